"""Mean squared error on class probabilities, the MSE baseline of the GLO papers."""

from __future__ import annotations

import keras
from keras import ops

from metaloss.losses._base import (
    ClassificationLoss,
    class_probabilities,
    float_predictions,
    one_hot_labels,
)

__all__ = ["ProbabilityMSE", "probability_mse"]


def probability_mse(y_true, y_pred, *, from_logits: bool = False):
    """Computes the mean squared error between one-hot labels and class probabilities.

    Formula (x = one-hot label, y = predicted probability, n classes):

    ```
    L(x, y) = (1/n) Σ_i (x_i - y_i)²
    ```

    This is the MSE of the GLO and TaylorGLO papers, applied *after* the softmax. Keras's
    ``MeanSquaredError`` on a metaloss model's raw outputs would compare the labels with logits.

    Args:
        y_true: one-hot labels ``(N, C)`` or class ids ``(N,)``.
        y_pred: probabilities, or logits when ``from_logits=True``, shape ``(N, C)``.
        from_logits: whether ``y_pred`` holds logits. Defaults to `False`.

    Returns:
        Per-sample losses, shape ``(N,)``.

    Example:

    >>> round(float(probability_mse([0], [[0.8, 0.2]])[0]), 4)  # (0.2² + 0.2²) / 2
    0.04

    References:
        Gonzalez & Miikkulainen, *Improved Training Speed, Accuracy, and Data Utilization
        Through Loss Function Optimization*, arXiv 1905.11528 (the MSE baseline).
    """
    y_pred, dtype = float_predictions(y_pred)
    x = one_hot_labels(y_true, y_pred)
    y = class_probabilities(y_pred, from_logits)
    return ops.cast(ops.mean(ops.square(x - y), axis=-1), dtype)


@keras.saving.register_keras_serializable(package="metaloss")
class ProbabilityMSE(ClassificationLoss):
    """Mean squared error between one-hot labels and probabilities: see :func:`probability_mse`.

    Args:
        from_logits: whether predictions are logits. Defaults to `False`.
        reduction: Keras reduction. Defaults to `"sum_over_batch_size"`.
        name: Defaults to `"probability_mse"`.
        dtype: computation dtype. Defaults to `None` (Keras's floatx).

    Example:

    >>> round(float(ProbabilityMSE()([[1.0, 0.0]], [[0.8, 0.2]])), 4)
    0.04

    References:
        Gonzalez & Miikkulainen, *Improved Training Speed, Accuracy, and Data Utilization
        Through Loss Function Optimization*, arXiv 1905.11528.
    """

    def __init__(
        self,
        from_logits: bool = False,
        reduction: str | None = "sum_over_batch_size",
        name: str = "probability_mse",
        dtype=None,
    ) -> None:
        super().__init__(from_logits=from_logits, reduction=reduction, name=name, dtype=dtype)

    def call(self, y_true, y_pred):
        return probability_mse(y_true, y_pred, from_logits=self.from_logits)
