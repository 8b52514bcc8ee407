"""A compiled training loop for any Keras model and loss, with metaloss's dynamical losses.

The train and eval steps are plain Python functions wrapped in ``tf.function(...,
reduce_retracing=True, jit_compile=...)`` (or run eagerly for debugging). The loop runs under any
``tf.distribute`` strategy, checkpoints every epoch and resumes, advances the clock of step-aware
losses inside the compiled step, and stops with status ``"diverged"`` on a non-finite loss instead
of silently training on.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import keras
import tensorflow as tf

from metaloss.losses import get as get_loss
from metaloss.losses import loss_step_variable
from metaloss.losses._base import invalid_value
from metaloss.training.schedules import make_optimizer

__all__ = ["FitResult", "Trainer"]

_HISTORY_FILE = "history.json"
_MEAN_REDUCTIONS = ("sum_over_batch_size", "mean", "mean_with_sample_weight")


@dataclass
class FitResult:
    """What :meth:`Trainer.fit` did.

    Attributes:
        history: per-epoch lists: ``loss``, ``accuracy`` and, with validation data,
            ``val_loss``, ``val_accuracy``.
        status: ``"completed"``, ``"diverged"`` (a non-finite loss or gradient stopped training)
            or ``"stopped"`` (a callback set ``model.stop_training``).
        message: a human-readable sentence about the status.
        epochs: epochs completed. steps: optimizer steps taken in total (resumed runs included).
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
        self._train_step = self._compile(self._train_step_fn, jit_compile, run_eagerly)
        self._eval_step = self._compile(self._eval_step_fn, jit_compile, run_eagerly)

    @staticmethod
    def _compile(fn, jit_compile, run_eagerly):
        if run_eagerly:
            return fn
        return tf.function(fn, reduce_retracing=True, jit_compile=jit_compile)

    # Replica-local computations -------------------------------------------------------------

    def _replica_train(self, x, y):
        variables = self.model.trainable_variables
        with tf.GradientTape() as tape:
            y_pred = self.model(x, training=True)
            loss, scaled = self._replica_loss(y, y_pred)
        gradients = tape.gradient(scaled, variables)
        finite = tf.math.is_finite(loss) & tf.math.is_finite(tf.linalg.global_norm(gradients))
        # A non-finite step leaves the weights as they were; the loop then stops.
        gradients = [tf.where(finite, g, tf.zeros_like(g)) for g in gradients]
        self.optimizer.apply_gradients(zip(gradients, variables, strict=True))
        return [*self._batch_totals(loss, y, y_pred), tf.cast(tf.logical_not(finite), tf.float64)]

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
        for total, value in zip(self._totals, per_replica[:3], strict=True):
            total.assign_add(self.strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None))

    def _train_step_fn(self, x, y):
        if self._clock is not None:
            self._clock.assign(tf.cast(self.optimizer.iterations, self._clock.dtype))
        per_replica = self.strategy.run(self._replica_train, args=(x, y))
        self._accumulate(per_replica)
        self._run_steps.assign_add(1)
        bad = self.strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica[3], axis=None)
        self._diverged.assign(tf.logical_or(self._diverged, bad > 0))

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
        train: tf.data.Dataset,
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
            train: a batched ``tf.data.Dataset`` of ``(x, y)``; one pass is one epoch.
            epochs: number of epochs. Defaults to `None` (as many as ``steps`` needs).
            steps: optimizer steps of this run (a resumed run counts the steps taken before
                the interruption). Defaults to `None`.
            validation: evaluated at the end of every epoch. Defaults to `None`.
            callbacks: Keras callbacks (epoch and batch hooks, ``model.stop_training``).
                Defaults to `None`.
            checkpoint_dir: saves model, optimizer and history every epoch, and resumes from
                there when it already holds a checkpoint. Defaults to `None`.
            verbose: "auto" (a progress bar on a terminal, quiet otherwise), 0, 1 or 2 (one
                line per epoch). Defaults to `"auto"`.

        Returns:
            A :class:`FitResult`.
        """
        epochs, steps = _check_budget(epochs, steps)
        verbose = (1 if sys.stdout.isatty() else 0) if verbose == "auto" else int(verbose)
        start = time.perf_counter()
        result = FitResult(history={})
        self._epoch.assign(0)
        self._run_steps.assign(0)
        checkpoint = _Checkpoint(checkpoint_dir, self) if checkpoint_dir else None
        if checkpoint is not None:
            result.history = checkpoint.restore()
        callback_list = keras.callbacks.CallbackList(
            callbacks or [], add_history=False, add_progbar=False, model=self.model
        )
        steps_per_epoch = int(train.cardinality().numpy())
        steps_per_epoch = steps_per_epoch if steps_per_epoch > 0 else None
        self._diverged.assign(False)
        self.model.stop_training = False
        callback_list.on_train_begin()
        epoch = int(self._epoch.numpy())
        while not _budget_spent(epoch, epochs, self._steps(), steps):
            callback_list.on_epoch_begin(epoch)
            logs = self._train_epoch(
                train, epoch, epochs, steps, steps_per_epoch, verbose, callback_list
            )
            if self._diverged.numpy():
                result.status = "diverged"
                result.message = (
                    f"training stopped at step {self._steps()} (epoch {epoch + 1}): the loss or "
                    "its gradient became non-finite; weights are those of the last finite step"
                )
                break
            if validation is not None:
                logs.update({f"val_{k}": v for k, v in self.evaluate(validation).items()})
            epoch += 1
            self._epoch.assign(epoch)
            for key, value in logs.items():
                result.history.setdefault(key, []).append(value)
            if checkpoint is not None:
                checkpoint.save(result.history)
            callback_list.on_epoch_end(epoch - 1, logs)
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

    def _train_epoch(self, train, epoch, epochs, steps, steps_per_epoch, verbose, callbacks):
        self._reset_totals()
        remaining = None if steps is None else steps - self._steps()
        target = (
            steps_per_epoch if remaining is None else min(steps_per_epoch or remaining, remaining)
        )
        progress = keras.utils.Progbar(target, verbose=1) if verbose == 1 else None
        if progress is not None:
            print(f"Epoch {epoch + 1}" + (f"/{epochs}" if epochs else ""))
        for batch, (x, y) in enumerate(self._distribute(train)):
            if remaining is not None and batch >= remaining:
                break
            callbacks.on_train_batch_begin(batch)
            self._train_step(x, y)
            callbacks.on_train_batch_end(batch)
            if progress is not None:
                progress.update(batch + 1, list(self._read_totals().items()))
            if self._diverged.numpy():
                break
        return self._read_totals()


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


class _Checkpoint:
    """Model, optimizer, epoch counter (TensorFlow checkpoint) and history (JSON) per epoch."""

    def __init__(self, directory: str | Path, trainer: Trainer) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._checkpoint = tf.train.Checkpoint(
            model=trainer.model,
            optimizer=trainer.optimizer,
            epoch=trainer._epoch,
            run_steps=trainer._run_steps,
        )
        self._manager = tf.train.CheckpointManager(self._checkpoint, str(self.directory), 2)

    def restore(self) -> dict[str, list[float]]:
        if self._manager.latest_checkpoint is None:
            return {}
        self._checkpoint.restore(self._manager.latest_checkpoint).assert_existing_objects_matched()
        history_path = self.directory / _HISTORY_FILE
        return json.loads(history_path.read_text()) if history_path.exists() else {}

    def save(self, history: dict[str, list[float]]) -> None:
        partial = self.directory / (_HISTORY_FILE + ".partial")
        partial.write_text(json.dumps(history))
        self._manager.save()
        partial.replace(self.directory / _HISTORY_FILE)
