"""`PopulationTrainer`: K replicas of one model, each with its own loss, trained in one program.

A TaylorGLO generation trains many small candidate models for a short budget; trained one after
another, each pays for its own model build, step tracing and per-step dispatch, which on small
models cost more than the arithmetic. The population trainer stacks the K replicas' weights on
a leading axis (see :mod:`metaloss.training._population_layers`), feeds them one shared data
stream, and takes one compiled step for all of them:

```
L_total(W_1..W_K) = Σ_k a_k · L_k(y, f(x; W_k))      a_k = 1 while replica k trains, else 0
```

Because replica k's logits depend only on ``W_k``, ``∂L_total/∂W_k = a_k ∂L_k/∂W_k``: each
replica gets exactly the gradient it would get alone, and the optimizer (any element-wise Keras
optimizer: SGD, momentum, Adam, decoupled weight decay) keeps per-replica state in the matching
slices of its stacked slots. A replica whose loss or gradient turns non-finite is frozen at its
last finite weights and reported ``"diverged"``; a replica stopped by its callbacks (the early
abort of TaylorGLO) is frozen likewise; the others train on undisturbed.

With ``streams``, the replicas read S data streams instead of one: replica k trains on stream
``streams[k]`` (its own data order, split and augmentation) and is validated on that stream's
validation set. A search scoring K candidates on R seeds trains K × R replicas this way, each
candidate once per seed's stream, in one program.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from metaloss.data.epochs import source_of
from metaloss.losses import TaylorGLO, loss_step_variable
from metaloss.losses import get as get_loss
from metaloss.losses._base import invalid_value, one_hot_labels
from metaloss.losses.taylor_glo import taylor_glo
from metaloss.training._output_check import warn_if_not_probabilities
from metaloss.training._population_layers import PopulationGraph, grouped_convolutions_train
from metaloss.training._randomness import EpochSeeds
from metaloss.training.schedules import make_optimizer
from metaloss.training.trainer import (
    FitResult,
    Trainer,
    _budget_spent,
    _check_budget,
    _true_classes,
)

__all__ = ["PopulationTrainer"]

_MEAN_REDUCTIONS = ("sum_over_batch_size", "mean")


class _Replica:
    """What a per-replica Keras callback sees as its ``model``: ``stop_training`` and ``index``."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.stop_training = False


def _check_optimizer(optimizer) -> keras.optimizers.Optimizer:
    if isinstance(optimizer, str):
        return make_optimizer(optimizer)
    if not isinstance(optimizer, keras.optimizers.Optimizer):
        raise invalid_value("optimizer", "a keras optimizer, 'sgd' or 'adam'", optimizer)
    if optimizer.clipnorm is not None or optimizer.global_clipnorm is not None:
        raise invalid_value(
            "optimizer",
            "an optimizer without clipnorm/global_clipnorm (norms would mix the replicas)",
            f"clipnorm={optimizer.clipnorm}, global_clipnorm={optimizer.global_clipnorm}",
        )
    # A fresh copy: its slots are built over the stacked weights, not the template's.
    return keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))


def _check_streams(streams, size: int) -> tuple[int, ...] | None:
    if streams is None:
        return None
    expected = f"{size} integers, one per replica, covering 0 .. S-1 for S streams"
    if isinstance(streams, str) or not isinstance(streams, Sequence) or len(streams) != size:
        raise invalid_value("streams", expected, streams)
    if any(isinstance(s, bool) or not isinstance(s, int | np.integer) for s in streams):
        raise invalid_value("streams", expected, streams)
    streams = tuple(int(s) for s in streams)
    if set(streams) != set(range(max(streams) + 1)):
        raise invalid_value("streams", expected, streams)
    return streams


def _stacked_batches(datasets: Sequence[tf.data.Dataset]) -> tf.data.Dataset:
    """S datasets of ``(x, y)`` batches as one of ``(x, y)`` stacked on a leading stream axis."""
    zipped = tf.data.Dataset.zip(tuple(datasets))
    return zipped.map(
        lambda *pairs: (tf.stack([x for x, _ in pairs]), tf.stack([y for _, y in pairs]))
    )


def _stacked_taylor_glo_theta(losses) -> np.ndarray | None:
    """θ of shape (K, 8) when every loss is a mean-reduced TaylorGLO on logits alike."""
    same = all(
        type(loss) is TaylorGLO
        and loss.reduction in _MEAN_REDUCTIONS
        and loss.from_logits == losses[0].from_logits
        for loss in losses
    )
    return np.asarray([loss.theta for loss in losses], dtype="float32") if same else None


class PopulationTrainer:
    """Trains K replicas of a Keras model at once, replica k with loss k, on shared batches.

    Args:
        model: a built functional or Sequential Keras model: the architecture, and the initial
            weights of every replica unless ``initial_weights`` is given. Regularization losses
            (``model.losses``) are not supported; use the optimizer's ``weight_decay``.
        losses: K losses (anything :func:`metaloss.losses.get` accepts); K = ``len(losses)``.
            When all are mean-reduced ``TaylorGLO`` losses their θ are evaluated as one tensor.
        optimizer: a Keras optimizer (copied: each replica gets its own state) or
            "sgd"/"adam". Defaults to `"sgd"`.
        initial_weights: K lists of trainable weights (``model.trainable_variables`` order), or
            `None` (every replica starts from ``model``'s weights). Defaults to `None`.
        jit_compile: XLA-compile the steps. Defaults to `None` (TensorFlow's default).
        run_eagerly: run steps eagerly, for debugging. Defaults to `False`.
        from_logits: passed to losses named by string. Defaults to `True`.
        replica_models: K built models of ``model``'s architecture that the replicas start
            from, normalization statistics and non-trainable state included (e.g. one model
            per data split); :meth:`replica_model` then gives them back with the trained
            weights. Excludes ``initial_weights``. Defaults to `None`.
        streams: the data stream of each replica, K integers covering ``0 .. S-1``: ``fit``
            and ``evaluate`` then take S datasets (one per stream, of equal batch shapes)
            instead of one, and replica k sees stream ``streams[k]``. Defaults to `None` (one
            stream shared by every replica).

    Example:

    ```python
    data = metaloss.data.load("mnist1d")
    model = metaloss.models.get("mlp", data.input_shape, data.num_classes)
    thetas = [[0, 0, 0, -2, 0, 2, 0, 0], [0, 0, 0, -1, 0, 1, 0, 0]]
    trainer = PopulationTrainer(model, [TaylorGLO(t, from_logits=True) for t in thetas],
                                keras.optimizers.SGD(0.1, momentum=0.9))
    results = trainer.fit(data.train, epochs=5, validation=data.validation)
    [r.history["val_accuracy"][-1] for r in results]   # one score per replica
    ```
    """

    def __init__(
        self,
        model: keras.Model,
        losses: Sequence,
        optimizer="sgd",
        *,
        initial_weights: Sequence[Sequence] | None = None,
        jit_compile: bool | None = None,
        run_eagerly: bool = False,
        from_logits: bool = True,
        replica_models: Sequence[keras.Model] | None = None,
        streams: Sequence[int] | None = None,
    ) -> None:
        if not isinstance(model, keras.Model):
            raise invalid_value("model", "a keras.Model", type(model).__name__)
        if isinstance(losses, str | dict) or not isinstance(losses, Sequence) or not losses:
            raise invalid_value("losses", "a non-empty list of losses, one per replica", losses)
        if model.losses:
            raise invalid_value(
                "model",
                "a model without regularization losses (use the optimizer's weight_decay)",
                f"{len(model.losses)} regularization losses",
            )
        self.losses = [get_loss(loss, from_logits=from_logits) for loss in losses]
        self.size = len(self.losses)
        if initial_weights is not None and len(initial_weights) != self.size:
            raise invalid_value(
                "initial_weights", f"{self.size} weight lists, one per replica", initial_weights
            )
        self.streams = _check_streams(streams, self.size)
        self._stream_index = (
            None if self.streams is None else tf.constant(self.streams, dtype=tf.int32)
        )
        self.model = model
        self.population = PopulationGraph(
            model,
            self.size,
            initial_weights,
            replica_models=replica_models,
            convolutions=(
                "grouped" if not jit_compile and grouped_convolutions_train() else "patches"
            ),
        )
        # Random layers restart every epoch from a state of (seed, epoch), as in the Trainer.
        self._seeds = EpochSeeds(model)
        self.optimizer = _check_optimizer(optimizer)
        self.optimizer.build(self.population.trainable)
        # Step-aware (dynamical) losses read the step from their clock, as in the Trainer.
        self._clocks = [c for c in map(loss_step_variable, self.losses) if c is not None]
        theta = _stacked_taylor_glo_theta(self.losses)
        self._theta = None if theta is None else tf.Variable(theta, trainable=False)
        k = self.size
        self._totals = [tf.Variable(tf.zeros(k, tf.float64), trainable=False) for _ in range(2)]
        self._count = tf.Variable(tf.zeros(k, tf.float64), trainable=False)
        self._active = tf.Variable(tf.ones(k, tf.bool), trainable=False)
        self._diverged_at = tf.Variable(tf.fill([k], tf.constant(-1, tf.int64)), trainable=False)
        self._replica_steps = tf.Variable(tf.zeros(k, tf.int64), trainable=False)
        self._train_step = Trainer._compile(self._train_step_fn, jit_compile, run_eagerly)
        self._eval_step = Trainer._compile(self._eval_step_fn, jit_compile, run_eagerly)

    @staticmethod
    def _trace(step, data: tf.data.Dataset | None) -> None:
        """Traces ``step`` once for the dataset's batch shapes (the batch axis left open), so
        that a last, smaller batch reuses the program instead of tracing a second one."""
        if data is not None and hasattr(step, "get_concrete_function"):  # not run eagerly
            step.get_concrete_function(*data.element_spec)

    # Losses -----------------------------------------------------------------------------------

    def _replica_losses(self, y, logits):
        """Each replica's mean loss over the batch: shape ``(K,)``. ``y`` is shared, or
        ``(K, B, ...)`` per replica with ``streams``."""
        if self._theta is not None:
            if self.streams is None:
                labels = one_hot_labels(y, logits[0])[None]
            else:
                labels = one_hot_labels(y, logits)
            theta = tf.transpose(self._theta)[:, :, None, None]  # θ_i broadcast as (K, 1, 1)
            values = taylor_glo(
                labels, logits, tf.cast(theta, logits.dtype), from_logits=self.losses[0].from_logits
            )
            return tf.reduce_mean(tf.cast(values, tf.float32), axis=-1)
        # Keras losses reduce themselves; plain callables give per-sample values, averaged here.
        values = [
            tf.cast(loss(self._labels_of(y, k), logits[k]), tf.float32)
            for k, loss in enumerate(self.losses)
        ]
        return tf.stack([tf.reduce_mean(v) for v in values])

    def _labels_of(self, y, index: int):
        return y if self.streams is None else y[index]

    def _forward(self, x, y, training: bool):
        """Every replica's logits, and the labels as the losses take them (gathered per replica
        from the streams when there are several)."""
        if self.streams is not None:
            y = tf.gather(y, self._stream_index)
        return self._logits(x, training), y

    def _logits(self, x, training: bool):
        """Every replica's logits for a batch: shared, or one per stream gathered per replica."""
        if self.streams is None:
            return self.population(x, training=training)
        return self.population(
            tf.gather(x, self._stream_index), training=training, per_replica=True
        )

    def _accumulate(self, losses, y, logits, mask):
        size = tf.cast(tf.shape(logits)[1], tf.float64)
        if self.streams is None:
            classes = _true_classes(y, logits[0])[None]
        else:
            classes = tf.stack([_true_classes(y[k], logits[k]) for k in range(self.size)])
        correct = tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32), classes)
        correct = tf.reduce_sum(tf.cast(correct, tf.float64), axis=1)
        mask = tf.cast(mask, tf.float64)
        losses = tf.math.multiply_no_nan(tf.cast(losses, tf.float64), mask)
        self._totals[0].assign_add(losses * size)
        self._totals[1].assign_add(correct * mask)
        self._count.assign_add(size * mask)

    # Compiled steps -----------------------------------------------------------------------------

    def _train_step_fn(self, x, y):
        variables = self.population.trainable
        for clock in self._clocks:
            clock.assign(tf.cast(self.optimizer.iterations, clock.dtype))
        active = self._active.value()
        state = [self.population.replica_state(k) for k in range(self.size)]
        before = [[tf.identity(v) for v in replica] for replica in state]
        with tf.GradientTape() as tape:
            logits, y = self._forward(x, y, training=True)
            losses = self._replica_losses(y, logits)
            total = tf.reduce_sum(tf.where(active, losses, tf.zeros_like(losses)))
        gradients = tape.gradient(total, variables)
        squares = tf.add_n(
            [tf.reduce_sum(tf.square(tf.reshape(g, [self.size, -1])), axis=1) for g in gradients]
        )
        finite = tf.math.is_finite(losses) & tf.math.is_finite(squares)
        update = active & finite

        def per_replica(mask, value):
            return tf.reshape(mask, [self.size] + [1] * (len(value.shape) - 1))

        pairs = list(zip(gradients, variables, strict=True))

        def apply_all():
            self.optimizer.apply_gradients(pairs)
            return tf.constant(True)

        def apply_masked():
            masked = [(tf.where(per_replica(update, g), g, tf.zeros_like(g)), v) for g, v in pairs]
            weights = [tf.identity(v) for v in variables]
            self.optimizer.apply_gradients(masked)
            # Frozen replicas keep their weights (momentum would otherwise move them) and the
            # state their forward pass changed (moving statistics, seed states).
            for variable, old in zip(variables, weights, strict=True):
                variable.assign(tf.where(per_replica(update, old), variable, old))
            for k, (replica, old_state) in enumerate(zip(state, before, strict=True)):
                for variable, old in zip(replica, old_state, strict=True):
                    variable.assign(tf.where(update[k], variable, old))
            return tf.constant(False)

        # The common case, every replica training and finite, skips the masking.
        tf.cond(tf.reduce_all(update), apply_all, apply_masked)
        # As in the Trainer, a non-finite step is not taken: it is the step after the last one.
        newly_diverged = active & tf.logical_not(finite)
        self._diverged_at.assign(
            tf.where(newly_diverged, self._replica_steps.value() + 1, self._diverged_at.value())
        )
        self._replica_steps.assign_add(tf.cast(update, tf.int64))
        self._active.assign(update)
        self._accumulate(losses, y, logits, update)

    def _eval_step_fn(self, x, y):
        logits, y = self._forward(x, y, training=False)
        losses = self._replica_losses(y, logits)
        self._accumulate(losses, y, logits, tf.ones([self.size], tf.bool))

    # Loops --------------------------------------------------------------------------------------

    def _reset_totals(self) -> None:
        for total in (*self._totals, self._count):
            total.assign(tf.zeros_like(total))

    def _read_totals(self) -> list[dict[str, float]]:
        loss_sum, correct = (t.numpy() for t in self._totals)
        count = np.maximum(self._count.numpy(), 1.0)
        return [
            {"loss": float(loss_sum[k] / count[k]), "accuracy": float(correct[k] / count[k])}
            for k in range(self.size)
        ]

    def evaluate(self, data) -> list[dict[str, float]]:
        """Each replica's mean loss and accuracy over a batched ``(x, y)`` dataset (with
        ``streams``: a sequence of S datasets, replica k evaluated on its stream's)."""
        return self._evaluate_stacked(self._one_dataset(data, "data"))

    def _evaluate_stacked(self, data: tf.data.Dataset) -> list[dict[str, float]]:
        self._reset_totals()
        for x, y in data:
            self._eval_step(x, y)
        return self._read_totals()

    def _one_dataset(self, data, argument: str):
        """The S datasets of the streams stacked into one (``data`` itself without streams)."""
        if self.streams is None or data is None:
            return data
        count = max(self.streams) + 1
        if isinstance(data, tf.data.Dataset) or len(data) != count:
            raise invalid_value(argument, f"{count} datasets, one per stream", data)
        return _stacked_batches(list(data))

    def _one_source(self, train):
        if self.streams is None:
            return source_of(train)
        count = max(self.streams) + 1
        if isinstance(train, tf.data.Dataset) or callable(train) or len(train) != count:
            raise invalid_value("train", f"{count} training sources, one per stream", train)
        sources = [source_of(t) for t in train]
        return lambda epoch: _stacked_batches([s(epoch) for s in sources])

    def fit(
        self,
        train,
        *,
        epochs: int | None = None,
        steps: int | None = None,
        validation: tf.data.Dataset | None = None,
        callbacks: Sequence[Sequence[keras.callbacks.Callback]] | None = None,
        verbose: str | int = "auto",
    ) -> list[FitResult]:
        """Trains every replica for ``epochs`` passes and/or ``steps`` steps, or until it stops.

        Args:
            train: the training batches of ``(x, y)``, shared by all replicas, as
                :meth:`Trainer.fit` takes them (a dataset, or a callable of the epoch); with
                ``streams``, a sequence of S of them.
            epochs: number of epochs. Defaults to `None` (as many as ``steps`` needs).
            steps: optimizer steps. Defaults to `None`.
            validation: evaluated for every replica at the end of every epoch (with
                ``streams``, a sequence of S datasets). Defaults to `None`.
            callbacks: K lists of Keras callbacks, list k driven by replica k's epoch logs
                (``on_train_begin``, ``on_epoch_begin``, ``on_epoch_end``, ``on_train_end``).
                Their ``model`` is a stand-in with ``index`` and ``stop_training``: setting
                ``stop_training`` freezes that replica alone. Defaults to `None`.
            verbose: "auto" (one line per epoch on a terminal, quiet otherwise), 0 or 1.
                Defaults to `"auto"`.

        Returns:
            K :class:`~metaloss.training.FitResult`, one per replica: status ``"completed"``,
            ``"diverged"`` (weights are those of its last finite step) or ``"stopped"``.
        """
        epochs, steps = _check_budget(epochs, steps)
        if callbacks is not None and len(callbacks) != self.size:
            raise invalid_value("callbacks", f"{self.size} lists, one per replica", callbacks)
        verbose = (1 if sys.stdout.isatty() else 0) if verbose == "auto" else int(verbose)
        start = time.perf_counter()
        replicas = [_Replica(k) for k in range(self.size)]
        callback_lists = [
            keras.callbacks.CallbackList(list(c), add_history=False, add_progbar=False)
            for c in (callbacks or [[] for _ in range(self.size)])
        ]
        for replica, callback_list in zip(replicas, callback_lists, strict=True):
            for callback in callback_list.callbacks:
                callback.set_model(replica)
            callback_list.on_train_begin()
        results = [FitResult(history={}) for _ in range(self.size)]
        self._active.assign(tf.ones([self.size], tf.bool))
        self._diverged_at.assign(tf.fill([self.size], tf.constant(-1, tf.int64)))
        self._replica_steps.assign(tf.zeros([self.size], tf.int64))
        source = self._one_source(train)
        validation = self._one_dataset(validation, "validation")
        self._trace(self._train_step, source(0))
        self._trace(self._eval_step, validation)
        run_steps, epoch = 0, 0
        while not _budget_spent(epoch, epochs, run_steps, steps) and self._active.numpy().any():
            running = self._active.numpy().copy()
            for k in np.flatnonzero(running):
                callback_lists[k].on_epoch_begin(epoch)
            self.population.start_epoch(self._seeds, epoch)
            self._reset_totals()
            for x, y in source(epoch):
                if run_steps == 0:
                    self._check_outputs(x)
                if steps is not None and run_steps >= steps:
                    break
                self._train_step(x, y)
                run_steps += 1
            train_logs = self._read_totals()
            val_logs = self._evaluate_stacked(validation) if validation is not None else None
            diverged_at = self._diverged_at.numpy()
            epoch += 1
            for k in np.flatnonzero(running):
                if diverged_at[k] >= 0:
                    results[k].status = "diverged"
                    results[k].message = (
                        f"training stopped at step {diverged_at[k]} (epoch {epoch}): the loss "
                        "or its gradient became non-finite; that step was not taken, and the "
                        "weights are those of the last finite step"
                    )
                    results[k].epochs = epoch - 1
                    continue
                logs = dict(train_logs[k])
                if val_logs is not None:
                    logs.update({f"val_{key}": v for key, v in val_logs[k].items()})
                for key, value in logs.items():
                    results[k].history.setdefault(key, []).append(value)
                results[k].epochs = epoch
                callback_lists[k].on_epoch_end(epoch - 1, logs)
                if replicas[k].stop_training:
                    results[k].status = "stopped"
                    results[k].message = f"a callback stopped training at epoch {epoch}"
                    self._freeze(k)
            if verbose == 1:
                best = max(
                    (logs.get("val_accuracy", logs["accuracy"]) for logs in val_logs or train_logs),
                    default=math.nan,
                )
                training = int(self._active.numpy().sum())
                print(f"epoch {epoch}: {training} replicas training, best {best:.4f}")
        steps_taken = self._replica_steps.numpy()
        seconds = time.perf_counter() - start
        for k, result in enumerate(results):
            callback_lists[k].on_train_end()
            result.steps = int(steps_taken[k])
            result.seconds = seconds
            if result.status == "completed":
                result.message = f"completed {result.epochs} epochs, {result.steps} steps"
        return results

    def _check_outputs(self, x) -> None:
        """Warns, once per run, for each probability loss about to be fed logits."""
        logits = self._logits(x, training=False)
        for k, loss in enumerate(self.losses):
            warn_if_not_probabilities(loss, logits[k])

    def _freeze(self, index: int) -> None:
        self._active.assign(tf.tensor_scatter_nd_update(self._active, [[index]], [False]))

    # Replicas -------------------------------------------------------------------------------------

    def replica_weights(self, index: int) -> list[np.ndarray]:
        """Replica ``index``'s trainable weights, in ``model.trainable_variables`` order."""
        self._check_index(index)
        return self.population.replica_weights(index)

    def replica_model(self, index: int) -> keras.Model:
        """The model holding replica ``index``'s weights: the template (the same object each
        call), or ``replica_models[index]`` when they were given."""
        self._check_index(index)
        return self.population.load_replica(index)

    def _check_index(self, index) -> None:
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < self.size:
            raise invalid_value("index", f"an integer in [0, {self.size})", index)
