"""AdaLFL: a learned loss network updated online, after every step of the base model.

Two compiled steps, both built on :class:`metaloss.training.Trainer`:

- the offline initialisation (ML3-style), repeated ``S_init`` times: reset the base weights θ,
  take one inner step ``θ' = θ - α ∇_θ M_φ(y, f_θ(x))``, evaluate the meta-objective
  ``L_T(y', f_θ'(x'))`` on another batch and update φ by its gradient;
- the online phase, every base step t: ``θ_{t+1} = U(θ_t, ∇_θ M_{φ_t}(y, f_{θ_t}(x)))`` with the
  base optimizer's update U, then ``φ_{t+1} = φ_t - η ∇_φ L_T(y', f_{θ_{t+1}}(x'))`` on a fresh
  batch: one-step unrolled differentiation through that very update.

``L_T`` is cross-entropy (classification) or squared error (regression). The unrolled update is
:func:`metaloss.search._unrolled.unrolled_step` (SGD with momentum/Nesterov, Adam, AdamW); the
model at θ' is evaluated with Keras's ``stateless_call``.

References:
    Raymond, Chen, Xue, Zhang, *Online Loss Function Learning*, arXiv 2301.13247;
    Bechtle et al., *Meta-Learning via Learned Loss*, arXiv 1906.05374.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import keras
import tensorflow as tf

from metaloss.data.epochs import one_batch_ahead, source_of
from metaloss.losses import LearnedLoss, SymbolicLoss
from metaloss.losses._base import invalid_value, one_hot_labels
from metaloss.search._online_records import OnlineResult, Snapshot, SnapshotRecorder
from metaloss.search._unrolled import check_unrollable, unrolled_step
from metaloss.training._checkpoint import EpochCheckpoint
from metaloss.training.schedules import make_optimizer
from metaloss.training.trainer import FitResult, Trainer

__all__ = [
    "DEFAULT_INIT_STEPS",
    "DEFAULT_INNER_LR",
    "METHODS",
    "AdaLFL",
    "OnlineResult",
    "Snapshot",
    "online_fit",
]

#: The methods :func:`online_fit` runs: ``"adalfl"`` (offline phase, then the loss learned
#: online) and ``"ml3"`` (offline phase only, then the loss frozen: :class:`~metaloss.search.ML3`).
METHODS = ("adalfl", "ml3")

_RESETS = ("shuffle", "initial")
#: The offline phase's inner step: ``"sgd"``, plain ``θ' = θ - α ∇_θ M_φ`` with ``inner_lr``
#: (ML3's and the AdaLFL paper's), or ``"fresh_optimizer"``, one step of a new copy of the base
#: optimizer (for Adam ≈ ``θ - lr·sign(g)``, whose derivative in ``g`` is steered by ε).
OFFLINE_STEPS = ("sgd", "fresh_optimizer")
#: α of the offline inner step. The AdaLFL paper writes the step as plain SGD,
#: ``θ' = θ - α ∇_θ M_φ`` (its Algorithm 1, S_inner = 1), without stating α in the text we
#: could read; 0.01 is the base learning rate of the same author's ML3 implementation for MNIST
#: (SGD without momentum, in the EvoMAL code), original ML3's MNIST experiment used 0.001.
DEFAULT_INNER_LR = 0.01
#: ``S_init``, the offline phase's steps: the AdaLFL paper's 2500.
DEFAULT_INIT_STEPS = 2500
_DEFAULT_RATES = {"sgd": 0.1, "adam": 1e-3}


def _meta_objective(name, from_logits):
    if callable(name) and not isinstance(name, str):
        return name
    if name == "cross_entropy":

        def cross_entropy(y_true, y_pred):
            labels = one_hot_labels(y_true, y_pred)
            return keras.ops.mean(
                keras.ops.categorical_crossentropy(labels, y_pred, from_logits=from_logits)
            )

        return cross_entropy
    if name == "mse":
        return lambda y_true, y_pred: keras.ops.mean(
            keras.ops.square(
                keras.ops.reshape(keras.ops.cast(y_true, y_pred.dtype), y_pred.shape) - y_pred
            )
        )
    raise invalid_value("meta_objective", "'cross_entropy', 'mse' or a callable", name)


class AdaLFL(Trainer):
    """Trains a model with a learned loss that is itself updated after every step.

    ``fit`` is :meth:`Trainer.fit` (epochs/steps, validation, callbacks, progress bar, a
    ``"diverged"`` status) with the online step of AdaLFL; :meth:`initialize` runs the offline
    phase first. ``history`` gains ``meta_loss``, the mean meta-objective of the epoch.

    Settings and their sources. From the AdaLFL paper (Raymond et al., arXiv 2301.13247,
    Algorithm 1 and its experimental setup): the loss network of two hidden layers of 40 units
    applied output-wise, ``S_init`` = 2500 offline steps (:data:`DEFAULT_INIT_STEPS`), one plain
    gradient inner step per offline step (``S_inner`` = 1) from freshly reset base weights, and
    Adam with η = 1e-3 for φ. Not found in the paper's text we could read, so chosen here: α of
    the inner step (:data:`DEFAULT_INNER_LR`, the base rate of the same author's ML3 code for
    MNIST), the smooth leaky ReLU's γ and β (see :class:`~metaloss.losses.LearnedLoss`), and the
    base optimizer (Adam at 1e-3: with SGD and heavy-ball momentum the one-step meta-gradient
    steepens the loss until training degrades, measured). The paper draws its meta batch from
    held-out data; here it is the next training batch unless ``meta_data`` is given.

    Args:
        model: a Keras model (outputs logits unless ``from_logits=False``).
        loss: the :class:`~metaloss.losses.LearnedLoss` to learn. Defaults to `None`: a new one
            (2×40, seeded with ``seed``) reading logits.
        optimizer: the base optimizer, SGD or Adam (see :func:`check_unrollable`), or
            "sgd" (``SGD(0.1)``, no momentum) / "adam" (``Adam(1e-3)``). Defaults to
            `"adam"`: with heavy-ball momentum the one-step meta-gradient keeps steepening the
            loss until training degrades (short-horizon bias; see the README).
        meta_optimizer: updates the loss network. Defaults to `None`: Adam with learning rate
            1e-3, as in the paper.
        meta_objective: ``L_T``: `"cross_entropy"`, `"mse"` or a callable of
            ``(y_true, y_pred)``. Defaults to `None`: from the loss's ``task``.
        inner_lr: α of the offline phase's inner step ``θ' = θ - α ∇_θ M_φ``. Defaults to
            :data:`DEFAULT_INNER_LR`.
        offline_step: the offline inner step, one of :data:`OFFLINE_STEPS`: `"sgd"` (plain
            gradient step with ``inner_lr``, as ML3 unrolls it) or `"fresh_optimizer"` (one
            step of a new copy of the base optimizer). Defaults to `"sgd"`.
        reset: the offline phase's reset of θ: `"shuffle"` permutes the entries of each initial
            weight tensor at random (a fresh draw from the same distribution for the i.i.d.
            initialisers every metaloss model uses) or `"initial"` (always the model's initial
            weights). Defaults to `"shuffle"`.
        seed: seeds the default loss network and the offline resets. Defaults to `None`.
        jit_compile: XLA-compile the steps. Defaults to `None`.
        run_eagerly: run the steps eagerly, for debugging. Defaults to `False`.
        from_logits: whether the model outputs logits. Defaults to `True`.

    Example:

    ```python
    data = metaloss.data.load("mnist1d")
    model = metaloss.models.get("mlp", data.input_shape, data.num_classes)
    adalfl = AdaLFL(model, optimizer=keras.optimizers.Adam(1e-3), seed=0)
    adalfl.initialize(data.train, steps=500)
    result = adalfl.fit(data.train, epochs=10, validation=data.validation)
    adalfl.loss                       # the learned loss, a LearnedLoss
    ```
    """

    def __init__(
        self,
        model: keras.Model,
        loss: LearnedLoss | None = None,
        optimizer="adam",
        *,
        meta_optimizer=None,
        meta_objective=None,
        inner_lr: float = DEFAULT_INNER_LR,
        offline_step: str = "sgd",
        reset: str = "shuffle",
        seed: int | None = None,
        jit_compile: bool | None = None,
        run_eagerly: bool = False,
        from_logits: bool = True,
    ) -> None:
        loss = LearnedLoss(seed=seed, from_logits=from_logits) if loss is None else loss
        if not isinstance(loss, LearnedLoss | SymbolicLoss):
            raise invalid_value(
                "loss", "a metaloss.losses.LearnedLoss (or a SymbolicLoss, to tune)", loss
            )
        if reset not in _RESETS:
            raise invalid_value("reset", f"one of {list(_RESETS)}", reset)
        if offline_step not in OFFLINE_STEPS:
            raise invalid_value("offline_step", f"one of {list(OFFLINE_STEPS)}", offline_step)
        if (
            isinstance(inner_lr, bool)
            or not isinstance(inner_lr, int | float)
            or not (0 < inner_lr < float("inf"))
        ):
            raise invalid_value("inner_lr", "a positive finite number", inner_lr)
        if isinstance(optimizer, str):
            if optimizer not in _DEFAULT_RATES:
                raise invalid_value("optimizer", "'sgd', 'adam' or a Keras SGD/Adam", optimizer)
            optimizer = make_optimizer(optimizer, _DEFAULT_RATES[optimizer], momentum=0.0)
        check_unrollable(optimizer)
        super().__init__(model, loss, optimizer, jit_compile=jit_compile, run_eagerly=run_eagerly)
        task = getattr(loss, "task", "classification")
        default_objective = "mse" if task == "regression" else "cross_entropy"
        self._objective = _meta_objective(meta_objective or default_objective, from_logits)
        self.meta_optimizer = (
            keras.optimizers.Adam(1e-3) if meta_optimizer is None else meta_optimizer
        )
        if not isinstance(self.meta_optimizer, keras.optimizers.Optimizer):
            raise invalid_value("meta_optimizer", "a keras optimizer or None", meta_optimizer)
        self.meta_optimizer.build(self._phi)
        self._reset = reset
        self.inner_lr = float(inner_lr)
        self.offline_step = offline_step
        self._seed = 0 if seed is None else int(seed)
        self._initial_theta = [
            tf.Variable(v.value, trainable=False) for v in model.trainable_variables
        ]
        self._meta_totals = [tf.Variable(0.0, trainable=False, dtype=tf.float64) for _ in range(2)]
        self._offline_steps = tf.Variable(0, trainable=False, dtype=tf.int64)
        self._recorder: SnapshotRecorder | None = None  # the snapshots of the `fit` in progress
        self._offline_step = self._compile(self._offline_step_fn, jit_compile, run_eagerly)
        self._offline_reset = self._compile(self._offline_reset_fn, False, run_eagerly)

    @property
    def _phi(self) -> list:
        return self.loss.trainable_variables

    # The meta-gradient -----------------------------------------------------------------------

    def _unrolled(self, theta, batch, meta_batch, *, offline):
        """The base step from ``theta`` and the meta-objective after it, differentiable in φ.

        Returns ``(base_loss, predictions, non_trainable, gradients, meta_loss)``: ``M_φ(y,
        f_θ(x))`` plus ``model.losses``, the model's outputs and updated non-trainable state
        (BatchNorm statistics), ``∇_θ`` of the base loss, and ``L_T(y', f_θ'(x'))`` with
        ``θ'`` the online update (:func:`unrolled_step` from the base optimizer's state) or,
        ``offline``, the offline phase's inner step (see ``offline_step``).
        """
        (x, y), (x_meta, y_meta) = batch, meta_batch
        model = self.model
        non_trainable = [v.value for v in model.non_trainable_variables]
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(theta)
            y_pred, non_trainable, regularization = model.stateless_call(
                theta, non_trainable, x, training=True, return_losses=True
            )
            base_loss = tf.reduce_mean(self.loss(y, y_pred))
            if regularization:
                base_loss = base_loss + tf.add_n(regularization)
        gradients = tape.gradient(base_loss, theta)
        if offline and self.offline_step == "sgd":
            new_theta = [
                t - tf.cast(self.inner_lr, t.dtype) * g
                for t, g in zip(theta, gradients, strict=True)
            ]
        else:
            new_theta = unrolled_step(
                self.optimizer, theta, gradients, model.trainable_variables, fresh=offline
            )
        meta_pred, _ = model.stateless_call(new_theta, non_trainable, x_meta, training=True)
        return base_loss, y_pred, non_trainable, gradients, self._objective(y_meta, meta_pred)

    def _differentiate(self, theta, batch, meta_batch, *, offline):
        """``_unrolled`` plus ``∇_φ`` of the meta-objective and whether everything is finite."""
        with tf.GradientTape(watch_accessed_variables=False) as meta_tape:
            phi = [v.value for v in self._phi]  # the tf.Variables behind Keras's variables
            meta_tape.watch(phi)
            base_loss, y_pred, non_trainable, gradients, meta_loss = self._unrolled(
                theta, batch, meta_batch, offline=offline
            )
        meta_gradients = meta_tape.gradient(meta_loss, phi)
        finite = _all_finite([base_loss, meta_loss, *gradients, *meta_gradients])
        return base_loss, y_pred, non_trainable, gradients, meta_loss, meta_gradients, finite

    def meta_gradient(self, x, y, x_meta, y_meta) -> tuple[tf.Tensor, list[tf.Tensor]]:
        """``∇_φ L_T(y', f_θ'(x'))`` at the model's current weights, changing nothing.

        ``θ' = U(θ, ∇_θ M_φ(y, f_θ(x)))`` is the base optimizer's next step from its current
        state, exactly the update :meth:`fit` takes.

        Returns:
            The meta-objective (a scalar) and one gradient per loss-network variable.
        """
        theta = [tf.convert_to_tensor(v) for v in self.model.trainable_variables]
        outputs = self._differentiate(theta, (x, y), (x_meta, y_meta), offline=False)
        return outputs[4], outputs[5]

    def offline_meta_gradient(self, x, y, x_meta, y_meta) -> tuple[tf.Tensor, list[tf.Tensor]]:
        """The offline phase's ``∇_φ L_T(y', f_θ'(x'))`` from the model's current weights θ
        (no reset), ``θ'`` the offline inner step (``offline_step``), changing nothing.

        Returns:
            The meta-objective (a scalar) and one gradient per loss-network variable.
        """
        theta = [tf.convert_to_tensor(v) for v in self.model.trainable_variables]
        outputs = self._differentiate(theta, (x, y), (x_meta, y_meta), offline=True)
        return outputs[4], outputs[5]

    def _update_phi(self, meta_gradients) -> None:
        self.meta_optimizer.apply_gradients(zip(meta_gradients, self._phi, strict=True))

    # Compiled steps --------------------------------------------------------------------------

    def _replica_gradients(self, batch, meta_batch):
        """One online step's gradients: the base step's with ``M_φ`` and φ's through it.

        Nothing is changed here; :meth:`_replica_apply` takes both steps, and a non-finite
        loss, meta-objective or gradient drops them both (see :meth:`Trainer._train_step_fn`).
        """
        theta = [tf.convert_to_tensor(v) for v in self.model.trainable_variables]
        base_loss, y_pred, non_trainable, gradients, meta_loss, meta_gradients, finite = (
            self._differentiate(theta, batch, meta_batch, offline=False)
        )
        self._meta_totals[0].assign_add(tf.cast(meta_loss, tf.float64))
        self._meta_totals[1].assign_add(1.0)
        bad = tf.cast(tf.logical_not(finite), tf.float64)
        return (
            self._batch_totals(base_loss, batch[1], y_pred),
            bad,
            (
                gradients,
                non_trainable,
                meta_gradients,
            ),
        )

    def _replica_apply(self, updates) -> None:
        gradients, non_trainable, meta_gradients = updates
        for variable, value in zip(self.model.non_trainable_variables, non_trainable, strict=True):
            variable.assign(value)
        self.optimizer.apply_gradients(zip(gradients, self.model.trainable_variables, strict=True))
        self._update_phi(meta_gradients)

    def _offline_reset_fn(self):
        """The next offline step's starting θ (``reset``); counts the step.

        Kept out of the XLA-compiled step: XLA has no kernel for the stateless shuffle.
        """
        self._offline_steps.assign_add(1)
        return [self._reset_value(v, index) for index, v in enumerate(self._initial_theta)]

    def _offline_step_fn(self, batch, meta_batch, theta):
        """One ML3-style step from the reset ``theta``: one inner step (``offline_step``),
        then φ's update.

        A non-finite step leaves φ and the meta-optimizer as they were.
        """
        *_, meta_loss, meta_gradients, finite = self._differentiate(
            theta, batch, meta_batch, offline=True
        )

        def update():
            self._update_phi(meta_gradients)
            return tf.constant(True)

        tf.cond(finite, update, lambda: tf.constant(False))
        return meta_loss, finite

    def _reset_value(self, initial, index):
        if self._reset == "initial":
            return tf.convert_to_tensor(initial)
        seed = tf.stack([tf.constant(self._seed * 1009 + index, tf.int64), self._offline_steps])
        flat = tf.random.experimental.stateless_shuffle(tf.reshape(initial, [-1]), seed=seed)
        return tf.reshape(flat, tf.shape(initial))

    # Totals: the epoch's mean meta-objective joins the loss and accuracy ----------------------

    def _reset_totals(self) -> None:
        super()._reset_totals()
        for total in self._meta_totals:
            total.assign(0.0)

    def _read_totals(self) -> dict[str, float]:
        totals = super()._read_totals()
        meta_sum, count = (float(t.numpy()) for t in self._meta_totals)
        if count:
            totals["meta_loss"] = meta_sum / count
        return totals

    # Loops -----------------------------------------------------------------------------------

    def initialize(
        self,
        train,
        steps: int,
        *,
        meta_data=None,
        verbose: str | int = "auto",
    ) -> FitResult:
        """The offline phase: ``steps`` ML3-style updates of φ from reset base weights.

        The base weights are those of the model now (its initialisation); each step resets θ
        (see ``reset``), takes the inner step ``θ' = θ - α ∇_θ M_φ`` (``inner_lr``; or one step
        of a fresh base optimizer, ``offline_step="fresh_optimizer"``) on a training batch and
        updates φ by the meta-gradient of ``L_T`` on the batch paired with it from
        ``meta_data``. The model itself does not change.

        Args:
            train: the training batches, as :meth:`Trainer.fit` takes them; epoch after epoch
                as needed.
            steps: ``S_init`` (the paper uses 2500), a positive integer.
            meta_data: batches for ``L_T``. Defaults to `None`: the training batches one batch
                ahead (each batch is paired with the one that follows it).
            verbose: "auto", 0 or 1 (a progress bar). Defaults to `"auto"`.

        Returns:
            A :class:`FitResult` with ``history["meta_loss"]`` (one value per step) and status
            ``"completed"`` or ``"diverged"`` (the non-finite step changed nothing: φ is its
            last finite value).
        """
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise invalid_value("steps", "a positive integer", steps)
        verbose = (1 if sys.stdout.isatty() else 0) if verbose == "auto" else int(verbose)
        start = time.perf_counter()
        for initial, variable in zip(
            self._initial_theta, self.model.trainable_variables, strict=True
        ):
            initial.assign(variable.value)
        stream = _endless(_with_meta_batches(train, meta_data))
        progress = keras.utils.Progbar(steps, verbose=1) if verbose == 1 else None
        result = FitResult(history={"meta_loss": []})
        for step in range(steps):
            meta_loss, finite = self._offline_step(*next(stream), self._offline_reset())
            if not bool(finite):
                result.status = "diverged"
                result.message = (
                    f"initialisation stopped at step {step + 1}: the learned loss or the "
                    "meta-objective became non-finite; the loss network is its last finite one"
                )
                break
            result.history["meta_loss"].append(float(meta_loss))
            result.steps = step + 1
            if progress is not None:
                progress.update(step + 1, [("meta_loss", float(meta_loss))])
        if result.status == "completed":
            result.message = f"completed {result.steps} initialisation steps"
        result.seconds = time.perf_counter() - start
        return result

    def fit(
        self,
        train,
        *,
        epochs: int | None = None,
        steps: int | None = None,
        validation: tf.data.Dataset | None = None,
        callbacks: list[keras.callbacks.Callback] | None = None,
        checkpoint_dir: str | Path | None = None,
        verbose: str | int = "auto",
        meta_data=None,
        snapshot_steps: Sequence[int] | None = None,
    ) -> OnlineResult:
        """The online phase: :meth:`Trainer.fit` with AdaLFL's step (see the class).

        Args:
            train, epochs, steps, validation, callbacks, verbose: as in :meth:`Trainer.fit`.
            checkpoint_dir: as in :meth:`Trainer.fit`; the checkpoint also holds φ, the
                meta-optimizer's state and the snapshots, so an interrupted run continues.
                Defaults to `None`.
            meta_data: batches for ``L_T`` (a dataset or an epoch source, restarted every
                epoch). Defaults to `None`: the training batches one batch ahead, so the
                meta-objective always sees the batch the next base step will train on.
            snapshot_steps: base steps at which to keep the learned loss (0 = before the first
                step). Defaults to `None`: step 0 and the end of every epoch.

        Returns:
            An :class:`OnlineResult` (``initialization`` is left `None`; :meth:`run` fills it).
        """
        self._recorder = SnapshotRecorder(self, snapshot_steps)
        try:
            fit = super().fit(
                self._training_batches(train, meta_data),
                epochs=epochs,
                steps=steps,
                validation=validation,
                callbacks=[*(callbacks or []), self._recorder],
                checkpoint_dir=checkpoint_dir,
                verbose=verbose,
            )
        finally:
            recorder, self._recorder = self._recorder, None
        result = OnlineResult(**{k: getattr(fit, k) for k in FitResult.__dataclass_fields__})
        if result.status == "diverged":
            result.message = (
                f"training stopped at step {result.steps + 1} (epoch {result.epochs + 1}): the "
                "learned loss, the meta-objective or a gradient became non-finite; that step was "
                "not taken, and the learned loss is its last finite network, kept as the final "
                "snapshot"
            )
            recorder.record(result.steps, result.epochs)
        result.snapshots = recorder.snapshots
        result.loss = type(self.loss).from_config(self.loss.get_config())
        return result

    def run(
        self,
        train,
        *,
        init_steps: int = 0,
        epochs: int | None = None,
        steps: int | None = None,
        validation: tf.data.Dataset | None = None,
        meta_data=None,
        snapshot_steps: Sequence[int] | None = None,
        callbacks: list[keras.callbacks.Callback] | None = None,
        checkpoint_dir: str | Path | None = None,
        verbose: str | int = "auto",
    ) -> OnlineResult:
        """Both phases: :meth:`initialize` for ``init_steps`` (skipped at 0), then :meth:`fit`.

        A non-finite offline phase stops before training, with status ``"diverged"``. With
        ``checkpoint_dir``, the end of the offline phase is checkpointed too: a resumed run
        that finds a checkpoint skips it and continues the online phase where it stopped (an
        offline phase that was itself interrupted runs again from its start, to the same φ).
        """
        if isinstance(init_steps, bool) or not isinstance(init_steps, int) or init_steps < 0:
            raise invalid_value("init_steps", "an integer >= 0", init_steps)
        initialization = None
        resuming = checkpoint_dir is not None and tf.train.latest_checkpoint(checkpoint_dir)
        if init_steps and resuming:
            initialization = _load_initialization(Path(checkpoint_dir))
        elif init_steps:
            initialization = self.initialize(
                train, init_steps, meta_data=meta_data, verbose=verbose
            )
            if initialization.status == "diverged":
                return OnlineResult(
                    status="diverged",
                    message=initialization.message,
                    initialization=initialization,
                    snapshots=[Snapshot(0, 0, self.loss.get_config())],
                    loss=LearnedLoss.from_config(self.loss.get_config()),
                )
            if checkpoint_dir is not None:
                # The offline result first, then the checkpoint that marks the phase done.
                _save_initialization(Path(checkpoint_dir), initialization)
                self._epoch.assign(0)
                self._run_steps.assign(0)
                EpochCheckpoint(checkpoint_dir, self).save({})
        result = self.fit(
            train,
            epochs=epochs,
            steps=steps,
            validation=validation,
            callbacks=callbacks,
            checkpoint_dir=checkpoint_dir,
            verbose=verbose,
            meta_data=meta_data,
            snapshot_steps=snapshot_steps,
        )
        result.initialization = initialization
        return result

    def _training_batches(self, train, meta_data):
        """What the online step reads: each training batch with its meta batch."""
        return _with_meta_batches(train, meta_data)

    # Checkpoints: φ, the meta-optimizer and the snapshots join the Trainer's ------------------

    def _checkpoint_objects(self) -> dict:
        return {"loss_network": list(self._phi), "meta_optimizer": self.meta_optimizer}

    def _checkpoint_state(self) -> dict:
        recorder = self._recorder
        return {} if recorder is None else {"snapshots": [s.to_dict() for s in recorder.snapshots]}

    def _restore_state(self, state: dict) -> None:
        if self._recorder is not None and "snapshots" in state:
            self._recorder.resume([Snapshot(**s) for s in state["snapshots"]])


_INITIALIZATION_FILE = "initialization.json"


def _save_initialization(directory: Path, initialization: FitResult) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    partial = directory / (_INITIALIZATION_FILE + ".partial")
    partial.write_text(json.dumps(initialization.to_dict()))
    partial.replace(directory / _INITIALIZATION_FILE)


def _load_initialization(directory: Path) -> FitResult | None:
    path = directory / _INITIALIZATION_FILE
    return FitResult(**json.loads(path.read_text())) if path.exists() else None


def _with_meta_batches(train, meta_data):
    """An epoch source of ``((x, y), (x', y'))``: each training batch and a meta batch.

    Without ``meta_data`` the meta batch is the training batch that comes next (the first of
    the next epoch after the last); with it, ``meta_data``'s batches, restarted every epoch.
    """
    source = source_of(train)
    if meta_data is None:
        meta = one_batch_ahead(source)
    else:
        meta_source = source_of(meta_data, "meta_data")

        def meta(epoch):
            return meta_source(epoch).repeat()

    return lambda epoch: tf.data.Dataset.zip(source(epoch), meta(epoch))


def _endless(source):
    """The batches of ``source``'s epochs 0, 1, 2, ... one after another."""
    epoch = 0
    while True:
        yield from source(epoch)
        epoch += 1


def _all_finite(tensors) -> tf.Tensor:
    return tf.reduce_all([tf.reduce_all(tf.math.is_finite(t)) for t in tensors])


def online_fit(
    model: keras.Model,
    train,
    *,
    epochs: int | None = None,
    steps: int | None = None,
    init_steps: int = DEFAULT_INIT_STEPS,
    validation: tf.data.Dataset | None = None,
    meta_data=None,
    loss: LearnedLoss | None = None,
    optimizer="adam",
    meta_optimizer=None,
    meta_objective=None,
    inner_lr: float = DEFAULT_INNER_LR,
    offline_step: str = "sgd",
    reset: str = "shuffle",
    snapshot_steps: Sequence[int] | None = None,
    callbacks: list[keras.callbacks.Callback] | None = None,
    seed: int | None = None,
    jit_compile: bool | None = None,
    checkpoint_dir: str | Path | None = None,
    verbose: str | int = "auto",
    method: str = "adalfl",
) -> OnlineResult:
    """AdaLFL (or ML3) end to end: ``init_steps`` offline steps, then training.

    See :class:`AdaLFL` for the arguments it shares and :meth:`AdaLFL.run` for
    ``checkpoint_dir`` (resume an interrupted run); ``init_steps`` defaults to
    :data:`DEFAULT_INIT_STEPS` (the paper's 2500), and 0 skips the offline phase. A non-finite
    offline phase stops before training, with status ``"diverged"``. ``method`` is one of
    :data:`METHODS`: `"adalfl"` learns the loss online after the offline phase, `"ml3"`
    freezes it (:class:`~metaloss.search.ML3`). Defaults to `"adalfl"`.

    Returns:
        An :class:`OnlineResult`: history (``loss``, ``accuracy``, ``meta_loss`` and validation
        metrics per epoch), the offline phase's result, the snapshots and the learned loss.

    Example:

    ```python
    data = metaloss.data.load("mnist1d")
    model = metaloss.models.get("mlp", data.input_shape, data.num_classes)
    result = online_fit(model, data.train, epochs=10, init_steps=200, seed=0,
                        optimizer=keras.optimizers.Adam(1e-3))
    metaloss.losses.save(result.loss, "learned_loss.json")
    ```
    """
    if method not in METHODS:
        raise invalid_value("method", f"one of {list(METHODS)}", method)
    from metaloss.search.ml3 import ML3  # ML3 builds on AdaLFL: imported here, not above

    learner = AdaLFL if method == "adalfl" else ML3
    adalfl = learner(
        model,
        loss,
        optimizer,
        meta_optimizer=meta_optimizer,
        meta_objective=meta_objective,
        inner_lr=inner_lr,
        offline_step=offline_step,
        reset=reset,
        seed=seed,
        jit_compile=jit_compile,
    )
    return adalfl.run(
        train,
        init_steps=init_steps,
        epochs=epochs,
        steps=steps,
        validation=validation,
        meta_data=meta_data,
        snapshot_steps=snapshot_steps,
        callbacks=callbacks,
        checkpoint_dir=checkpoint_dir,
        verbose=verbose,
    )
