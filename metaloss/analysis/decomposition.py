"""Learning-rule decomposition of TaylorGLO losses: closed-form γ coefficients and the invariant.

With ``L = -(1/n) Σ_k f(x_k, y_k)``, SGD moves the parameters by ``Δθ ∝ Σ_k γ_k ∇_θ y_k`` with
``γ_k = ∂f/∂y_k``. For TaylorGLO, ``γ`` is a polynomial in the label ``x`` and the prediction
``y`` whose six coefficients are closed-form functions of ``θ``; the invariant that the
TaylorGLO search uses to reject candidates before training is a linear inequality in them.

References:
    Gonzalez & Miikkulainen, *Optimizing Loss Functions Through Multivariate Taylor Polynomial
    Parameterization*, arXiv:2002.00059.
    Gonzalez & Miikkulainen, *Effective Regularization Through Loss-Function Metalearning*,
    arXiv:2010.00788.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["TaylorGLOCoefficients", "taylor_glo_coefficients", "taylor_glo_invariant"]


@dataclass(frozen=True)
class TaylorGLOCoefficients:
    """The coefficients of TaylorGLO's learning rule (paper convention, with factorials).

    ``γ(x, y) = c1 + c_y·x + c_yy·x² + c_h·y + c_hh·y² + c_hy·x·y``.
    """

    c1: float
    c_y: float
    c_yy: float
    c_h: float
    c_hh: float
    c_hy: float

    def gamma(self, x, y):
        """``γ(x, y)`` for label ``x`` and predicted probability ``y`` (broadcasts)."""
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        return (
            self.c1
            + self.c_y * x
            + self.c_yy * x**2
            + self.c_h * y
            + self.c_hh * y**2
            + self.c_hy * x * y
        )


def _theta(theta: Sequence[float]) -> np.ndarray:
    values = np.asarray(theta, dtype=np.float64).reshape(-1)
    if values.shape != (8,) or not np.all(np.isfinite(values)):
        raise ValueError(
            "Invalid value for argument `theta`. Expected 8 finite numbers. "
            f"Received: theta={list(np.asarray(theta).reshape(-1))}"
        )
    return values


def taylor_glo_coefficients(theta: Sequence[float]) -> TaylorGLOCoefficients:
    """The γ coefficients of a TaylorGLO loss.

    Formula (REFERENCE §2, checked symbolically and against autodiff in the tests):

    ```
    c1   = θ2 - θ1θ3 + ½θ4θ1² - θ0θ5 + θ0θ1θ6 + ½θ7θ0²
    c_h  = θ3 - θ0θ6 - θ1θ4        c_hh = ½θ4        c_hy = θ6
    c_y  = θ5 - θ1θ6 - θ0θ7        c_yy = ½θ7
    ```

    Args:
        theta: the 8 parameters θ0..θ7.

    Returns:
        A :class:`TaylorGLOCoefficients`.

    Example:

    >>> # θ3 = -2, θ5 = 2 is MSE up to a constant: γ = 2(x - y).
    >>> c = taylor_glo_coefficients([0, 0, 0, -2, 0, 2, 0, 0])
    >>> float(c.gamma(1.0, 0.25))
    1.5
    """
    t0, t1, t2, t3, t4, t5, t6, t7 = _theta(theta)
    return TaylorGLOCoefficients(
        c1=t2 - t1 * t3 + 0.5 * t4 * t1**2 - t0 * t5 + t0 * t1 * t6 + 0.5 * t7 * t0**2,
        c_y=t5 - t1 * t6 - t0 * t7,
        c_yy=0.5 * t7,
        c_h=t3 - t0 * t6 - t1 * t4,
        c_hh=0.5 * t4,
        c_hy=t6,
    )


def taylor_glo_invariant(theta: Sequence[float], num_classes: int) -> bool:
    """Whether a TaylorGLO candidate satisfies the null-epoch invariant (keep it) or not.

    At the null epoch every output is about ``1/n``. The rule coded in the TaylorGLO reference
    release keeps a candidate iff the target's pull outweighs the push of the ``n - 1``
    non-targets:

    ```
    γ(x=1, y=1/n) ≥ (n - 1) · γ(x=0, y=1/n)
    ⇔  c_y + c_yy + c_hy/n  ≥  (n - 2) · (c1 + c_h/n + c_hh/n²)
    ```

    (Under softmax the strictly necessary condition, ``γ_target > γ_non-target``, is weaker;
    this stricter heuristic is the one the search uses.)

    Args:
        theta: the 8 parameters θ0..θ7.
        num_classes: ``n``, at least 2.

    Returns:
        ``True`` when the candidate is kept.

    Example:

    >>> taylor_glo_invariant([0, 0, 0, -2, 0, 2, 0, 0], 10)   # MSE-like: kept
    True
    >>> taylor_glo_invariant([0, 0, 1, 0, 0, 0, 0, 0], 10)    # pushes every output up
    False
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(
            "Invalid value for argument `num_classes`. Expected an integer >= 2. "
            f"Received: num_classes={num_classes!r}"
        )
    c = taylor_glo_coefficients(theta)
    n = float(num_classes)
    pull = c.c_y + c.c_yy + c.c_hy / n
    push = (n - 2.0) * (c.c1 + c.c_h / n + c.c_hh / n**2)
    return bool(pull >= push)
