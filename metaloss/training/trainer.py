"""A compiled training loop for any Keras model and loss, with metaloss's dynamical losses.

The train and eval steps are plain Python functions wrapped in ``tf.function(...,
reduce_retracing=True, jit_compile=...)`` (or run eagerly for debugging). The loop runs under any
``tf.distribute`` strategy, advances the clock of step-aware losses inside the compiled step, and
stops with status ``"diverged"`` on a non-finite loss instead of silently training on; the
non-finite step itself changes nothing (weights, optimizer slots and iteration count, the
model's non-trainable state). Every epoch's data order and random draws are functions of
``(seed, epoch)``, and checkpoints are written once per epoch, so a run killed at any moment
resumes to exactly the weights the uninterrupted run ends with.
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import keras
import tensorflow as tf

from metaloss.data.epochs import batches_per_epoch, source_of
from metaloss.losses import get as get_loss
from metaloss.losses import loss_step_variable
from metaloss.losses._base import invalid_value
from metaloss.training._checkpoint import EpochCheckpoint
from metaloss.training._output_check import warn_if_not_probabilities
from metaloss.training._randomness import EpochSeeds
from metaloss.training.schedules import make_optimizer

__all__ = ["FitResult", "Trainer"]

_MEAN_REDUCTIONS = ("sum_over_batch_size", "mean", "mean_with_sample_weight")


@dataclass
class FitResult:
    """What :meth:`Trainer.fit` did.

    Attributes:
        history: per-epoch lists: ``loss``, ``accuracy`` and, with validation data,
            ``val_loss``, ``val_accuracy``.
        status: ``"completed"``, ``"diverged"`` (a non-finite loss or gradient stopped training;
            that step was not taken) or ``"stopped"`` (a callback set ``model.stop_training``).
        message: a human-readable sentence about the status.
        epochs: epochs completed. steps: optimizer steps taken in total (resumed runs included;
            a non-finite step is not taken).
        seconds: wall time of this call.
    """

    history: dict[str, list[float]] = field(default_factory=dict)
    status: str = "completed"
    message: str = ""
    epochs: int = 0
    steps: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def _true_classes(y_true, y_pred):
    if len(y_true.shape) == len(y_pred.shape) and y_true.shape[-1] == y_pred.shape[-1]:
        return tf.argmax(y_true, axis=-1, output_type=tf.int32)
    return tf.cast(tf.reshape(y_true, [-1]), tf.int32)


class Trainer:
    """Trains a Keras model with any loss in compiled steps.

    Args:
        model: a Keras model (built under ``strategy.scope()`` when a strategy is given).
        loss: a Keras loss, or anything :func:`metaloss.losses.get` accepts.
        optimizer: a Keras optimizer or "sgd"/"adam" (see :func:`make_optimizer`).
            Defaults to `"sgd"`.
        strategy: a ``tf.distribute.Strategy``. Defaults to `None` (the default strategy).
        jit_compile: XLA-compile the steps. Defaults to `None` (TensorFlow's default).
        run_eagerly: run steps eagerly, for debugging. Defaults to `False`.
        from_logits: passed to losses named by string. Defaults to `True` (metaloss models
            output logits).

    Example:

    ```python
    data = metaloss.data.load("mnist1d")
    model = metaloss.models.get("mlp", data.input_shape, data.num_classes)
    trainer = Trainer(model, "baikal", keras.optimizers.SGD(0.1, momentum=0.9))
    result = trainer.fit(data.train, epochs=10, validation=data.validation)
    trainer.evaluate(data.test)   # {"loss": ..., "accuracy": ...}
    ```
    """

    def __init__(
        self,
        model: keras.Model,
        loss,
        optimizer="sgd",
        *,
        strategy: tf.distribute.Strategy | None = None,
        jit_compile: bool | None = None,
        run_eagerly: bool = False,
        from_logits: bool = True,
    ) -> None:
        if not isinstance(model, keras.Model):
            raise invalid_value("model", "a keras.Model", type(model).__name__)
        self.model = model
        # Only a real strategy (given, or entered around the Trainer) distributes the data.
        self._distributed = strategy is not None or tf.distribute.has_strategy()
        self.strategy = strategy or tf.distribute.get_strategy()
        with self.strategy.scope():
            self.loss = get_loss(loss, from_logits=from_logits)
            self.optimizer = _optimizer_in_scope(optimizer, self.strategy)
            self.optimizer.build(model.trainable_variables)
            # Compiling records the loss and optimizer, so `model.save` keeps them.
            model.compile(optimizer=self.optimizer, loss=self.loss, metrics=["accuracy"])
        self._clock = loss_step_variable(self.loss)
        self._totals = [tf.Variable(0.0, trainable=False, dtype=tf.float64) for _ in range(3)]
        self._diverged = tf.Variable(False, trainable=False)
        # Epochs and steps of the current run: reset by `fit`, restored from its checkpoint.
        self._epoch = tf.Variable(0, trainable=False, dtype=tf.int64)
        self._run_steps = tf.Variable(0, trainable=False, dtype=tf.int64)
        # Dropout and other random layers restart every epoch from a state of (seed, epoch).
        self._seeds = EpochSeeds(model)
        self._seed_bases = tf.Variable(self._seeds.bases, trainable=False)
        self._train_step = self._compile(self._train_step_fn, jit_compile, run_eagerly)
        self._eval_step = self._compile(self._eval_step_fn, jit_compile, run_eagerly)

    @staticmethod
    def _compile(fn, jit_compile, run_eagerly):
        if run_eagerly:
            return fn
        return tf.function(fn, reduce_retracing=True, jit_compile=jit_compile)

    # Replica-local computations -------------------------------------------------------------

    def _replica_gradients(self, x, y):
        """The forward and backward pass: ``(batch totals, non-finite flag, updates)``.

        ``updates`` is what :meth:`_replica_apply` needs to take the step; nothing here changes
        a weight or an optimizer slot, so a non-finite step can be dropped as a whole.
        """
        variables = self.model.trainable_variables
        with tf.GradientTape() as tape:
            y_pred = self.model(x, training=True)
            loss, scaled = self._replica_loss(y, y_pred)
        gradients = tape.gradient(scaled, variables)
        finite = tf.math.is_finite(loss) & tf.math.is_finite(tf.linalg.global_norm(gradients))
        bad = tf.cast(tf.logical_not(finite), tf.float64)
        return self._batch_totals(loss, y, y_pred), bad, gradients

    def _replica_apply(self, gradients) -> None:
        """Takes the step that :meth:`_replica_gradients` computed."""
        self.optimizer.apply_gradients(zip(gradients, self.model.trainable_variables, strict=True))

    def _replica_loss(self, y, y_pred):
        """The batch's mean loss, and that loss scaled for summing gradients over replicas.

        Keras's own ``Loss`` classes already divide mean reductions by the number of replicas
        (as ``model.fit`` expects); other callables get the division here.
        """
        replicas = self.strategy.num_replicas_in_sync
        value = self.loss(y, y_pred)
        reduction = getattr(self.loss, "reduction", None)
        if isinstance(self.loss, keras.losses.Loss) and reduction in _MEAN_REDUCTIONS:
            loss, scaled = value * replicas, value
        elif reduction == "sum":  # a sum over the global batch: replica gradients just add up
            loss = scaled = value
        else:
            loss = tf.reduce_mean(value)
            scaled = loss / replicas
        if self.model.losses:
            regularization = tf.add_n(self.model.losses)
            loss, scaled = loss + regularization, scaled + regularization / replicas
        return loss, scaled

    def _replica_eval(self, x, y):
        y_pred = self.model(x, training=False)
        return self._batch_totals(self._replica_loss(y, y_pred)[0], y, y_pred)

    @staticmethod
    def _batch_totals(loss, y, y_pred):
        size = tf.cast(tf.shape(y_pred)[0], tf.float64)
        correct = tf.equal(
            tf.argmax(y_pred, axis=-1, output_type=tf.int32), _true_classes(y, y_pred)
        )
        return [
            tf.cast(loss, tf.float64) * size,
            tf.reduce_sum(tf.cast(correct, tf.float64)),
            size,
        ]

    # Compiled steps (cross-replica) ----------------------------------------------------------

    def _accumulate(self, per_replica):
        for total, value in zip(self._totals, per_replica, strict=True):
            total.assign_add(self.strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None))

    def _train_step_fn(self, *batch):
        """One step, taken only if every replica's loss and gradients are finite.

        A non-finite step is dropped inside the compiled program: no optimizer update (weights,
        slots, ``iterations`` and so the learning-rate schedule stay), and the model's
        non-trainable state (BatchNorm statistics, dropout seeds) and the loss clock are put back
        as the step found them. The decision is taken across replicas, as Keras's
        ``LossScaleOptimizer`` does, so every replica agrees.
        """
        state = self._step_state()
        before = [tf.identity(v.value) for v in state]
        if self._clock is not None:
            self._clock.assign(tf.cast(self.optimizer.iterations, self._clock.dtype))
        totals, bad, updates = self.strategy.run(self._replica_gradients, args=batch)
        self._accumulate(totals)
        bad = self.strategy.reduce(tf.distribute.ReduceOp.SUM, bad, axis=None) > 0

        def take_step():
            self.strategy.run(self._replica_apply, args=(updates,))
            self._run_steps.assign_add(1)
            return tf.constant(True)

        def drop_step():
            for variable, value in zip(state, before, strict=True):
                variable.assign(value)
            return tf.constant(False)

        tf.cond(bad, drop_step, take_step)
        self._diverged.assign(tf.logical_or(self._diverged, bad))

    def _step_state(self) -> list:
        """Variables other than the optimizer's that a training step changes."""
        clock = [] if self._clock is None else [self._clock]
        return [*self.model.non_trainable_variables, *clock]

    def _eval_step_fn(self, x, y):
        self._accumulate(self.strategy.run(self._replica_eval, args=(x, y)))

    # Loops ------------------------------------------------------------------------------------

    def _reset_totals(self) -> None:
        for total in self._totals:
            total.assign(0.0)

    def _read_totals(self) -> dict[str, float]:
        loss_sum, correct, count = (float(t.numpy()) for t in self._totals)
        count = max(count, 1.0)
        return {"loss": loss_sum / count, "accuracy": correct / count}

    def _distribute(self, dataset: tf.data.Dataset):
        if not self._distributed:
            return dataset
        return self.strategy.experimental_distribute_dataset(dataset)

    def evaluate(self, data: tf.data.Dataset) -> dict[str, float]:
        """Mean loss and accuracy over a batched ``(x, y)`` dataset."""
        self._reset_totals()
        for x, y in self._distribute(data):
            self._eval_step(x, y)
        return self._read_totals()

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
    ) -> FitResult:
        """Trains for ``epochs`` passes over ``train`` and/or at most ``steps`` optimizer steps.

        Args:
            train: the training batches of ``(x, y)``: a callable ``epoch -> tf.data.Dataset``
                (such as ``Dataset.train_epoch`` of :func:`metaloss.data.load`), or a batched
                ``tf.data.Dataset``, one pass per epoch. The ``train`` pipeline of
                :func:`metaloss.data.load` is asked for each epoch by its index, so a resumed
                run sees the batches the uninterrupted one saw; any other dataset is iterated
                anew each epoch, in whatever order its pipeline gives. Epochs count from 0 in
                every call.
            epochs: number of epochs. Defaults to `None` (as many as ``steps`` needs).
            steps: optimizer steps of this run (a resumed run counts the steps taken before
                the interruption). Defaults to `None`.
            validation: evaluated at the end of every epoch. Defaults to `None`.
            callbacks: Keras callbacks (epoch and batch hooks, ``model.stop_training``).
                Defaults to `None`.
            checkpoint_dir: saves model, optimizer, random state and history every epoch, and
                resumes from there when it already holds a checkpoint. Defaults to `None`.
            verbose: "auto" (a progress bar on a terminal, quiet otherwise), 0, 1 or 2 (one
                line per epoch). Defaults to `"auto"`.

        Returns:
            A :class:`FitResult`.
        """
        epochs, steps = _check_budget(epochs, steps)
        source = source_of(train)
        verbose = (1 if sys.stdout.isatty() else 0) if verbose == "auto" else int(verbose)
        start = time.perf_counter()
        result = FitResult(history={})
        self._epoch.assign(0)
        self._run_steps.assign(0)
        checkpoint = EpochCheckpoint(checkpoint_dir, self) if checkpoint_dir else None
        if checkpoint is not None:
            result.history = checkpoint.restore()
        callback_list = keras.callbacks.CallbackList(
            callbacks or [], add_history=False, add_progbar=False, model=self.model
        )
        steps_per_epoch = batches_per_epoch(source)
        self._diverged.assign(False)
        self.model.stop_training = False
        callback_list.on_train_begin()
        epoch = int(self._epoch.numpy())
        while not _budget_spent(epoch, epochs, self._steps(), steps):
            callback_list.on_epoch_begin(epoch)
            self._seeds.start_epoch(epoch)
            logs = self._train_epoch(
                source(epoch), epoch, epochs, steps, steps_per_epoch, verbose, callback_list
            )
            if self._diverged.numpy():
                result.status = "diverged"
                result.message = (
                    f"training stopped at step {self._steps() + 1} (epoch {epoch + 1}): the loss "
                    "or its gradient became non-finite; that step was not taken, and the weights "
                    "are those of the last finite step"
                )
                break
            if validation is not None:
                logs.update({f"val_{k}": v for k, v in self.evaluate(validation).items()})
            epoch += 1
            self._epoch.assign(epoch)
            for key, value in logs.items():
                result.history.setdefault(key, []).append(value)
            callback_list.on_epoch_end(epoch - 1, logs)
            if checkpoint is not None:  # after the callbacks: it holds what they recorded
                checkpoint.save(result.history)
            if verbose == 2:
                print(f"epoch {epoch}: " + ", ".join(f"{k}={v:.4f}" for k, v in logs.items()))
            if self.model.stop_training:
                result.status, result.message = (
                    "stopped",
                    f"a callback stopped training at epoch {epoch}",
                )
                break
        callback_list.on_train_end()
        if result.status == "completed":
            result.message = f"completed {epoch} epochs, {self._steps()} steps"
        result.epochs, result.steps = epoch, self._steps()
        result.seconds = time.perf_counter() - start
        return result

    def _steps(self) -> int:
        return int(self._run_steps.numpy())

    def _check_outputs(self, batch) -> None:
        """Warns, once per run, when a probability loss is about to be fed logits."""
        x = batch[0][0] if isinstance(batch[0], tuple) else batch[0]
        if self._distributed:
            x = self.strategy.experimental_local_results(x)[0]
        warn_if_not_probabilities(self.loss, self.model(x, training=False))

    def _train_epoch(self, train, epoch, epochs, steps, steps_per_epoch, verbose, callbacks):
        self._reset_totals()
        remaining = None if steps is None else steps - self._steps()
        target = (
            steps_per_epoch if remaining is None else min(steps_per_epoch or remaining, remaining)
        )
        progress = keras.utils.Progbar(target, verbose=1) if verbose == 1 else None
        if progress is not None:
            print(f"Epoch {epoch + 1}" + (f"/{epochs}" if epochs else ""))
        for batch, data in enumerate(self._distribute(train)):
            if remaining is not None and batch >= remaining:
                break
            if batch == 0 and self._steps() == 0:
                self._check_outputs(data)
            callbacks.on_train_batch_begin(batch)
            self._train_step(*data)
            callbacks.on_train_batch_end(batch)
            if progress is not None:
                progress.update(batch + 1, list(self._read_totals().items()))
            if self._diverged.numpy():
                break
        return self._read_totals()

    # Checkpoints: what else a subclass saves ------------------------------------------------

    def _checkpoint_objects(self) -> dict:
        """Trackable objects saved with every checkpoint, beyond the model and optimizer."""
        return {}

    def _checkpoint_state(self) -> dict:
        """JSON-able state saved with every checkpoint (a subclass's records)."""
        return {}

    def _restore_state(self, state: dict) -> None:
        """Takes back what :meth:`_checkpoint_state` gave, after a restore."""


def _optimizer_in_scope(optimizer, strategy) -> keras.optimizers.Optimizer:
    """The optimizer, re-created from its config if it was made outside ``strategy``'s scope."""
    if isinstance(optimizer, str):
        return make_optimizer(optimizer)
    if not isinstance(optimizer, keras.optimizers.Optimizer):
        raise invalid_value("optimizer", "a keras optimizer, 'sgd' or 'adam'", optimizer)
    made_in = getattr(optimizer, "_distribution_strategy", strategy)
    if made_in is not strategy and not optimizer.built:
        return keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    return optimizer


def _check_budget(epochs, steps):
    for name, value in (("epochs", epochs), ("steps", steps)):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 1
        ):
            raise invalid_value(name, "a positive integer or None", value)
    if epochs is None and steps is None:
        raise invalid_value("epochs", "a positive integer when steps is None", epochs)
    return epochs, steps


def _budget_spent(epoch, epochs, steps_done, steps) -> bool:
    return (epochs is not None and epoch >= epochs) or (steps is not None and steps_done >= steps)
