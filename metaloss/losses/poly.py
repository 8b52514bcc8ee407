"""Poly-1: cross-entropy with its leading polynomial coefficient changed (PolyLoss)."""

from __future__ import annotations

import math
import numbers

import keras
from keras import ops

from metaloss.losses._base import (
    ClassificationLoss,
    class_log_probabilities,
    float_predictions,
    invalid_value,
    one_hot_labels,
)

__all__ = ["PolyLoss", "poly_loss"]


def poly_loss(y_true, y_pred, *, epsilon: float = 1.0, from_logits: bool = False):
    """Computes the Poly-1 loss of each sample: cross-entropy plus ``ε (1 - p_t)``.

    Formula (x = one-hot or soft label, y = predicted probability):

    ```
    L(x, y) = -Σ_i x_i log y_i + ε (1 - Σ_i x_i y_i)
    ```

    ``p_t = Σ_i x_i y_i`` is the probability of the target class (for soft labels, its
    expectation under the label distribution, as in the paper's reference implementation). The
    first term is cross-entropy; the second is the leading term of CE's Taylor expansion in
    ``(1 - p_t)`` with its coefficient changed from 1 to ``1 + ε``.

    Args:
        y_true: one-hot labels ``(N, C)`` or class ids ``(N,)``.
        y_pred: probabilities, or logits when ``from_logits=True``, shape ``(N, C)``.
        epsilon: the Poly-1 coefficient ε. Defaults to 1.0, the paper's recommended setting.
        from_logits: whether ``y_pred`` holds logits. Defaults to `False`.

    Returns:
        Per-sample losses, shape ``(N,)``.

    Example:

    >>> # -log 0.5 + 1 · (1 - 0.5)
    >>> round(float(poly_loss([0], [[0.5, 0.5]])[0]), 4)
    1.1931

    References:
        Leng et al., *PolyLoss: A Polynomial Expansion Perspective of Classification Loss
        Functions*, arXiv 2204.12511 (ICLR 2022).
    """
    y_pred, dtype = float_predictions(y_pred)
    x = one_hot_labels(y_true, y_pred)
    log_y = class_log_probabilities(y_pred, from_logits)
    p_target = ops.sum(x * ops.exp(log_y), axis=-1)
    cross_entropy = -ops.sum(x * log_y, axis=-1)
    return ops.cast(cross_entropy + epsilon * (1.0 - p_target), dtype)


@keras.saving.register_keras_serializable(package="metaloss")
class PolyLoss(ClassificationLoss):
    """Poly-1, cross-entropy plus ``ε (1 - p_t)``: see :func:`poly_loss`.

    Args:
        epsilon: the finite coefficient ε (ε = 0 is cross-entropy). Defaults to 1.0.
        from_logits: whether predictions are logits. Defaults to `False`.
        reduction: Keras reduction. Defaults to `"sum_over_batch_size"`.
        name: Defaults to `"poly_loss"`.
        dtype: computation dtype. Defaults to `None` (Keras's floatx).

    Example:

    >>> round(float(PolyLoss(epsilon=2.0)([[1.0, 0.0]], [[0.5, 0.5]])), 4)
    1.6931

    References:
        Leng et al., *PolyLoss: A Polynomial Expansion Perspective of Classification Loss
        Functions*, arXiv 2204.12511.
    """

    def __init__(
        self,
        epsilon: float = 1.0,
        from_logits: bool = False,
        reduction: str | None = "sum_over_batch_size",
        name: str = "poly_loss",
        dtype=None,
    ) -> None:
        super().__init__(from_logits=from_logits, reduction=reduction, name=name, dtype=dtype)
        if (
            isinstance(epsilon, bool)
            or not isinstance(epsilon, numbers.Real)
            or not math.isfinite(epsilon)
        ):
            raise invalid_value("epsilon", "a finite number", epsilon)
        self.epsilon = float(epsilon)

    def call(self, y_true, y_pred):
        return poly_loss(y_true, y_pred, epsilon=self.epsilon, from_logits=self.from_logits)

    def get_config(self) -> dict:
        return {**super().get_config(), "epsilon": self.epsilon}
