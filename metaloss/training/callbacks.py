"""Keras callbacks for training with metaloss losses under ``model.fit``."""

from __future__ import annotations

import keras

from metaloss.losses import loss_step_variable

__all__ = ["LossClock"]


class LossClock(keras.callbacks.Callback):
    """Advances the step counter of step-aware losses (e.g. ``CyclicClassEmphasis``).

    Before each training batch it sets ``loss.step`` to the optimizer's iteration count, so the
    loss follows its schedule under ``model.fit`` and stays right after a resume. The metaloss
    ``Trainer`` advances the clock inside its compiled step and needs no callback.

    Args:
        loss: the loss to drive. Defaults to `None`: every step-aware loss the model was compiled
            with.

    Example:

    ```python
    loss = metaloss.losses.CyclicClassEmphasis(3, period=5000, amplitude=70, from_logits=True)
    model.compile(optimizer="sgd", loss=loss)
    model.fit(x, y, callbacks=[metaloss.training.LossClock()])
    ```
    """

    def __init__(self, loss=None) -> None:
        super().__init__()
        self._loss = loss
        self._variables: list[keras.Variable] = []

    def on_train_begin(self, logs=None) -> None:
        losses = [self._loss] if self._loss is not None else _flatten(self.model.loss)
        self._variables = [v for v in map(loss_step_variable, losses) if v is not None]

    def on_train_batch_begin(self, batch, logs=None) -> None:
        if self._variables:
            step = int(self.model.optimizer.iterations.numpy())
            for variable in self._variables:
                variable.assign(step)


def _flatten(losses) -> list:
    if isinstance(losses, dict):
        return list(losses.values())
    if isinstance(losses, list | tuple):
        return list(losses)
    return [losses]
