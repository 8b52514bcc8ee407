"""TaylorGLO: losses parameterised as third-order bivariate Taylor polynomials."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
from keras import ops

from metaloss.losses._base import (
    ClassificationLoss,
    class_probabilities,
    finite_floats,
    float_predictions,
    invalid_value,
    one_hot_labels,
)

__all__ = ["REFERENCE_CODE_EXAMPLE", "TaylorGLO", "taylor_glo"]

NUM_PARAMETERS = 8

# The example vector shipped with the TaylorGLO reference code, in that code's own order
# [θ2, θ3, θ4, θ5, θ6, θ7, θ0, θ1] and without the Taylor factorials.
REFERENCE_CODE_EXAMPLE = (8.2896, 0.2415, 7.8726, 8.9666, 2.0184, 7.0513, -10.9408, 7.5216)

# Factor that turns the reference code's coefficient of each term into the paper's θ.
_FACTORIALS = (1.0, 1.0, 1.0, 2.0, 6.0, 1.0, 2.0, 2.0)


def taylor_glo(y_true, y_pred, theta, *, from_logits: bool = False):
    """Computes the TaylorGLO loss of each sample (paper convention, with factorials).

    Formula (x = one-hot label, y = predicted probability, n classes):

    ```
    L(x, y) = -(1/n) Σ_i [ θ2 (y_i-θ1) + ½θ3 (y_i-θ1)² + ⅙θ4 (y_i-θ1)³
                           + θ5 (x_i-θ0)(y_i-θ1) + ½θ6 (x_i-θ0)(y_i-θ1)² + ½θ7 (x_i-θ0)²(y_i-θ1) ]
    ```

    The four terms of the full third-order expansion with no ``y`` factor are dropped: they
    cannot change ``∂L/∂y`` and so cannot change training.

    Args:
        y_true: one-hot labels ``(N, C)`` or class ids ``(N,)``.
        y_pred: probabilities, or logits when ``from_logits=True``, shape ``(N, C)``.
        theta: the 8 parameters θ0..θ7 (a sequence or a tensor of shape ``(8,)``).
        from_logits: whether ``y_pred`` holds logits. Defaults to `False`.

    Returns:
        Per-sample losses, shape ``(N,)``.

    Example:

    >>> # θ3 = -2, θ5 = 2 gives mean((x - y)²) - mean(x²): MSE less a constant.
    >>> theta = [0, 0, 0, -2, 0, 2, 0, 0]
    >>> float(taylor_glo([0], [[0.8, 0.2]], theta)[0])  # ((0.2²+0.2²) - 1) / 2
    -0.46

    References:
        Gonzalez & Miikkulainen, *Optimizing Loss Functions Through Multivariate Taylor
        Polynomial Parameterization*, arXiv 2002.00059 (GECCO 2021).
    """
    y_pred, dtype = float_predictions(y_pred)
    x = one_hot_labels(y_true, y_pred)
    y = class_probabilities(y_pred, from_logits)
    if ops.is_tensor(theta):
        t = [ops.cast(theta[i], y.dtype) for i in range(NUM_PARAMETERS)]
    else:  # Python constants: the scalar arithmetic below folds away in the compiled step.
        t = [float(v) for v in np.asarray(theta, dtype="float64").reshape(NUM_PARAMETERS)]
    dx = x - t[0]
    dy = y - t[1]
    # Horner form of the six terms above.
    inner = (
        t[2] + dy * (t[3] / 2 + dy * (t[4] / 6)) + dx * (t[5] + dy * (t[6] / 2) + dx * (t[7] / 2))
    )
    return ops.cast(-ops.mean(dy * inner, axis=-1), dtype)


@keras.saving.register_keras_serializable(package="metaloss")
class TaylorGLO(ClassificationLoss):
    """TaylorGLO loss: a third-order Taylor polynomial in (label, prediction), 8 parameters.

    Formula: see :func:`taylor_glo`. ``theta`` uses the paper's convention (with the Taylor
    factorials, order θ0..θ7); vectors published with the reference code use another convention,
    convert them with :meth:`from_reference_code`.

    Args:
        theta: the 8 finite parameters θ0..θ7.
        from_logits: whether predictions are logits. Defaults to `False`.
        reduction: Keras reduction. Defaults to `"sum_over_batch_size"`.
        name: Defaults to `"taylor_glo"`.
        dtype: computation dtype. Defaults to `None` (Keras's floatx).

    Example:

    >>> loss = TaylorGLO([0, 0, 0, -2, 0, 2, 0, 0])
    >>> float(loss([0], [[0.8, 0.2]]))
    -0.46

    References:
        Gonzalez & Miikkulainen, *Optimizing Loss Functions Through Multivariate Taylor
        Polynomial Parameterization*, arXiv 2002.00059; *Effective Regularization Through
        Loss-Function Metalearning*, arXiv 2010.00788.
    """

    def __init__(
        self,
        theta: Sequence[float],
        from_logits: bool = False,
        reduction: str | None = "sum_over_batch_size",
        name: str = "taylor_glo",
        dtype=None,
    ) -> None:
        super().__init__(from_logits=from_logits, reduction=reduction, name=name, dtype=dtype)
        self.theta = finite_floats("theta", theta, NUM_PARAMETERS)

    def call(self, y_true, y_pred):
        return taylor_glo(y_true, y_pred, self.theta, from_logits=self.from_logits)

    def get_config(self) -> dict:
        return {**super().get_config(), "theta": list(self.theta)}

    @classmethod
    def from_reference_code(cls, vector: Sequence[float], **kwargs) -> TaylorGLO:
        """Builds the loss from a vector in the reference code's convention.

        The reference release stores ``[θ2, θ3, θ4, θ5, θ6, θ7, θ0, θ1]`` and omits the Taylor
        factorials, so its θ3, θ4, θ6, θ7 are the paper's divided by 2, 6, 2, 2.

        Args:
            vector: 8 finite numbers in the reference code's order and convention.
            **kwargs: other constructor arguments (``from_logits``, ``name``...).

        Returns:
            A `TaylorGLO` with ``theta`` in the paper's convention.

        Example:

        >>> TaylorGLO.from_reference_code(REFERENCE_CODE_EXAMPLE).theta[:4]
        (-10.9408, 7.5216, 8.2896, 0.483)
        """
        code = finite_floats("vector", vector, NUM_PARAMETERS)
        reordered = code[6:] + code[:6]
        return cls(
            [round(v * f, 12) for v, f in zip(reordered, _FACTORIALS, strict=True)], **kwargs
        )

    def with_label_smoothing(self, alpha: float, num_classes: int) -> TaylorGLO:
        """The `TaylorGLO` that equals this loss evaluated on labels smoothed by ``alpha``.

        Label smoothing replaces the one-hot label by ``x' = (1-α) x + α/n``. Then
        ``x' - θ0 = (1-α)(x - θ0')`` with ``θ0' = (θ0 - α/n) / (1-α)``, so each term of
        :func:`taylor_glo` keeps its form with ``θ5 → (1-α)θ5``, ``θ6 → (1-α)θ6`` and
        ``θ7 → (1-α)²θ7``: label smoothing stays inside the TaylorGLO family and the returned
        loss on one-hot labels takes exactly the values of this one on smoothed labels.

        Args:
            alpha: the smoothing α, in ``[0, 1)``.
            num_classes: the number of classes ``n`` (at least 2).

        Returns:
            A `TaylorGLO` with the same ``from_logits``, reduction and dtype.

        Example:

        >>> TaylorGLO([0.5, 0, 0, 0, 0, 2, 0, 0]).with_label_smoothing(0.5, 2).theta[0]
        0.5
        >>> TaylorGLO([0.5, 0, 0, 0, 0, 2, 0, 0]).with_label_smoothing(0.5, 2).theta[5]
        1.0

        References:
            Gonzalez & Miikkulainen, *Effective Regularization Through Loss-Function
            Metalearning*, arXiv 2010.00788, Appendix D.2.
        """
        if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 <= alpha < 1:
            raise invalid_value("alpha", "a number in [0, 1)", alpha)
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise invalid_value("num_classes", "an integer >= 2", num_classes)
        keep = 1.0 - float(alpha)
        theta = list(self.theta)
        theta[0] = (theta[0] - alpha / num_classes) / keep
        theta[5] *= keep
        theta[6] *= keep
        theta[7] *= keep**2
        return TaylorGLO(
            theta,
            from_logits=self.from_logits,
            reduction=self.reduction,
            name=self.name,
            dtype=self._dtype_argument,
        )

    def to_reference_code(self) -> tuple[float, ...]:
        """The inverse of :meth:`from_reference_code`: this θ in the reference code's convention."""
        unscaled = [v / f for v, f in zip(self.theta, _FACTORIALS, strict=True)]
        return tuple(unscaled[2:] + unscaled[:2])

    def __repr__(self) -> str:
        theta = ", ".join(f"{v:.4g}" for v in self.theta)
        return f"TaylorGLO(theta=[{theta}], from_logits={self.from_logits})"
