"""Baikal: the loss discovered by GLO's genetic-programming search."""

from __future__ import annotations

import math

import keras
from keras import ops

from metaloss.losses._base import (
    ClassificationLoss,
    class_log_probabilities,
    float_predictions,
    one_hot_labels,
)

__all__ = ["Baikal", "baikal"]


def baikal(y_true, y_pred, *, from_logits: bool = False):
    """Computes the Baikal loss of each sample.

    Formula (x = one-hot label, y = predicted probability, n classes):

    ```
    L(x, y) = -(1/n) Σ_i ( log y_i - x_i / y_i )
    ```

    The ``log`` term covers every class, the ``x / y`` term only the target. Probabilities are
    clipped to ``[epsilon, 1]`` (logits: ``log_softmax``, with the ``1 / y`` term evaluated at
    ``max(log y, log epsilon)``) so that the loss and its gradient stay finite.

    Args:
        y_true: one-hot labels ``(N, C)`` or class ids ``(N,)``.
        y_pred: probabilities, or logits when ``from_logits=True``, shape ``(N, C)``.
        from_logits: whether ``y_pred`` holds logits. Defaults to `False`.

    Returns:
        Per-sample losses, shape ``(N,)``.

    Example:

    >>> # -(log 0.5 - 1/0.5 + log 0.5) / 2 = 1 + log 2
    >>> round(float(baikal([0], [[0.5, 0.5]])[0]), 4)
    1.6931

    References:
        Gonzalez & Miikkulainen, *Improved Training Speed, Accuracy, and Data Utilization
        Through Loss Function Optimization*, arXiv 1905.11528.
    """
    y_pred, dtype = float_predictions(y_pred)
    x = one_hot_labels(y_true, y_pred)
    log_y = class_log_probabilities(y_pred, from_logits)
    inverse_y = ops.exp(-ops.maximum(log_y, math.log(keras.config.epsilon())))
    return ops.cast(-ops.mean(log_y - x * inverse_y, axis=-1), dtype)


@keras.saving.register_keras_serializable(package="metaloss")
class Baikal(ClassificationLoss):
    """Baikal loss, ``-(1/n) Σ_i (log y_i - x_i / y_i)``: see :func:`baikal`.

    Args:
        from_logits: whether predictions are logits. Defaults to `False`.
        reduction: Keras reduction. Defaults to `"sum_over_batch_size"`.
        name: Defaults to `"baikal"`.
        dtype: computation dtype. Defaults to `None` (Keras's floatx).

    Example:

    >>> round(float(Baikal()([[1.0, 0.0]], [[0.5, 0.5]])), 4)
    1.6931

    References:
        Gonzalez & Miikkulainen, *Improved Training Speed, Accuracy, and Data Utilization
        Through Loss Function Optimization*, arXiv 1905.11528.
    """

    def __init__(
        self,
        from_logits: bool = False,
        reduction: str | None = "sum_over_batch_size",
        name: str = "baikal",
        dtype=None,
    ) -> None:
        super().__init__(from_logits=from_logits, reduction=reduction, name=name, dtype=dtype)

    def call(self, y_true, y_pred):
        return baikal(y_true, y_pred, from_logits=self.from_logits)
