"""Learning-rule decomposition: the γ coefficients of any loss, closed forms, and invariants.

With a per-sample loss ``L = -(1/n) Σ_k f(x_k, y_k)`` over ``n`` classes (``x`` the one-hot label,
``y`` the predicted probabilities), SGD moves the parameters by ``Δθ ∝ Σ_k γ_k ∇_θ y_k`` with
``γ_k = ∂f/∂y_k = -n ∂L/∂y_k``: ``γ`` is the loss's *learning rule*. :func:`gamma` computes it
by autodiff for any loss; the closed forms below cover cross-entropy, MSE, Baikal and TaylorGLO
(whose ``γ`` is a polynomial with six coefficients, closed-form functions of ``θ``).

Under softmax ``Σ_k ∇_θ y_k = 0``, so adding the same constant to every class's ``γ`` changes
nothing in training; only differences between classes act. Two null-epoch checks follow: the
TaylorGLO search's invariant (:func:`taylorglo_invariant`, in closed form) and, for any loss by
autodiff, :func:`invariant`, which reports both that coded rule and the weaker softmax condition.

References:
    Gonzalez & Miikkulainen, *Optimizing Loss Functions Through Multivariate Taylor Polynomial
    Parameterization*, arXiv:2002.00059.
    Gonzalez & Miikkulainen, *Effective Regularization Through Loss-Function Metalearning*,
    arXiv:2010.00788.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from metaloss.losses._base import invalid_value

__all__ = [
    "InvariantCheck",
    "NullEpochCheck",
    "TaylorGLOCoefficients",
    "gamma",
    "gamma_baikal",
    "gamma_cross_entropy",
    "gamma_mse",
    "gamma_taylor_glo",
    "invariant",
    "per_sample_loss",
    "taylor_glo_coefficients",
    "taylorglo_invariant",
]


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
        raise invalid_value("theta", "8 finite numbers", list(np.asarray(theta).reshape(-1)))
    return values


def taylor_glo_coefficients(theta: Sequence[float]) -> TaylorGLOCoefficients:
    """The γ coefficients of a TaylorGLO loss.

    Formula (Gonzalez & Miikkulainen, arXiv 2010.00788; checked symbolically and against
    autodiff in the tests):

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


def gamma_taylor_glo(theta: Sequence[float], x, y) -> np.ndarray:
    """TaylorGLO's learning rule in closed form: ``taylor_glo_coefficients(theta).gamma(x, y)``.

    Formula: ``γ = c1 + c_y·x + c_yy·x² + c_h·y + c_hh·y² + c_hy·x·y`` (coefficients as in
    :func:`taylor_glo_coefficients`).

    Args:
        theta: the 8 parameters θ0..θ7 (paper convention).
        x: one-hot labels, shape ``(N, C)`` (or anything broadcasting with ``y``).
        y: predicted probabilities, shape ``(N, C)``.

    Returns:
        ``γ``, float64, the broadcast shape of ``x`` and ``y``.

    Example:

    >>> float(gamma_taylor_glo([0, 0, 0, -2, 0, 2, 0, 0], 1.0, 0.25))   # MSE-like: 2(x - y)
    1.5
    """
    return taylor_glo_coefficients(theta).gamma(x, y)


def gamma_cross_entropy(x, y) -> np.ndarray:
    """Cross-entropy's learning rule in the paper's convention, ``f = x log y``: ``γ = x / y``.

    Keras's ``CategoricalCrossentropy`` sums over classes instead of averaging and divides ``y``
    by its sum first, so :func:`gamma` of it is ``n·x/y − n·Σx/Σy``: ``n`` times this rule plus a
    class-constant shift, which changes nothing under softmax.

    Args:
        x: one-hot labels, shape ``(N, C)``.
        y: predicted probabilities in ``(0, 1]``, shape ``(N, C)``.

    Returns:
        ``x / y``, float64, shape ``(N, C)``.

    Example:

    >>> gamma_cross_entropy([[0.0, 1.0]], [[0.5, 0.5]])
    array([[0., 2.]])
    """
    x, y = _labels_and_probabilities(x, y)
    return x / y


def gamma_mse(x, y) -> np.ndarray:
    """Mean squared error's learning rule, ``f = -(x - y)²``: ``γ = 2(x - y)``.

    ``keras.losses.MeanSquaredError`` averages over classes, so it is exactly this convention.

    Args:
        x: one-hot labels, shape ``(N, C)``.
        y: predictions, shape ``(N, C)``.

    Returns:
        ``2(x - y)``, float64, shape ``(N, C)``.

    Example:

    >>> gamma_mse([[0.0, 1.0]], [[0.25, 0.75]])
    array([[-0.5,  0.5]])
    """
    x, y = _labels_and_probabilities(x, y)
    return 2.0 * (x - y)


def gamma_baikal(x, y) -> np.ndarray:
    """Baikal's learning rule, ``f = log y - x/y``: ``γ = 1/y + x/y²``.

    Args:
        x: one-hot labels, shape ``(N, C)``.
        y: predicted probabilities in ``(0, 1]``, shape ``(N, C)``.

    Returns:
        ``1/y + x/y²``, float64, shape ``(N, C)``.

    Example:

    >>> gamma_baikal([[0.0, 1.0]], [[0.5, 0.5]])
    array([[2., 6.]])

    References:
        Gonzalez & Miikkulainen, *Improved Training Speed, Accuracy, and Data Utilization
        Through Loss Function Optimization*, arXiv:1905.11528.
    """
    x, y = _labels_and_probabilities(x, y)
    return 1.0 / y + x / y**2


def _labels_and_probabilities(x, y) -> tuple[np.ndarray, np.ndarray]:
    try:
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError):
        raise invalid_value("x", "numeric arrays x and y of shape (N, C)", x) from None
    if x.ndim == 1:
        x = x[None, :]
    if y.ndim == 1:
        y = y[None, :]
    if x.ndim != 2 or y.shape != x.shape or x.shape[-1] < 2 or x.shape[0] == 0:
        raise invalid_value("y", f"probabilities shaped like x {x.shape} (N, C >= 2)", y.shape)
    if not np.all(np.isfinite(x)):
        raise invalid_value("x", "finite one-hot labels", x.tolist())
    if not np.all(np.isfinite(y) & (y > 0)):
        raise invalid_value("y", "finite probabilities > 0", y.tolist())
    return x, y


def per_sample_loss(loss):
    """The per-sample function ``(y_true, y_pred) -> (N,)`` of a loss, taking probabilities.

    A ``keras.losses.Loss`` contributes its unreduced ``call``. A loss built with
    ``from_logits=True`` is rebuilt from its config with ``from_logits=False``, so that every
    loss is differentiated with respect to probabilities (``from_logits`` losses would otherwise
    see ``log y`` and add a class-constant term). Strings and configs go through
    :func:`metaloss.losses.get`; other callables are used as they are.

    Args:
        loss: a loss (anything :func:`metaloss.losses.get` accepts).

    Returns:
        A callable of ``(y_true, y_pred)`` with probabilities ``y_pred``.
    """
    import keras

    from metaloss.losses import get

    loss = get(loss)
    if not isinstance(loss, keras.losses.Loss):
        return loss
    config = loss.get_config()
    if config.get("from_logits"):
        loss = type(loss).from_config({**config, "from_logits": False})
    return loss.call


def gamma(loss, x, y) -> np.ndarray:
    """The learning-rule coefficients ``γ_k = ∂f/∂y_k = -n ∂L/∂y_k`` of any loss, by autodiff.

    Formula: with the per-sample loss written as ``L(x, y) = -(1/n) Σ_k f(x_k, y_k)``,

    ```
    γ_k(x, y) = -n · ∂L(x, y) / ∂y_k          (one value per sample and class)
    ```

    which gives ``x/y`` for the paper's cross-entropy ``f = x log y``, ``2(x - y)`` for MSE,
    ``1/y + x/y²`` for Baikal and TaylorGLO's polynomial (closed forms: :func:`gamma_cross_entropy`,
    :func:`gamma_mse`, :func:`gamma_baikal`, :func:`gamma_taylor_glo`). The derivative treats
    each ``y_k`` as free; under softmax a class-constant shift of ``γ`` changes nothing.

    Args:
        loss: a zoo loss, a Keras built-in, a name or spec, or a per-sample callable of
            ``(y_true, y_pred)`` taking probabilities. ``from_logits=True`` losses are
            differentiated with respect to probabilities (see :func:`per_sample_loss`).
        x: one-hot (or soft) labels, shape ``(N, C)``; a single ``(C,)`` row is read as ``N = 1``.
        y: predicted probabilities in ``(0, 1]``, shape ``(N, C)``.

    Returns:
        ``γ``, float64, shape ``(N, C)``.

    Example:

    >>> gamma("baikal", [[0.0, 1.0]], [[0.5, 0.5]])   # 1/y + x/y²
    array([[2., 6.]])

    References:
        Gonzalez & Miikkulainen, *Effective Regularization Through Loss-Function Metalearning*,
        arXiv:2010.00788.
    """
    import tensorflow as tf

    x, y = _labels_and_probabilities(x, y)
    function = per_sample_loss(loss)
    labels = tf.constant(x)
    probabilities = tf.constant(y)
    with tf.GradientTape() as tape:
        tape.watch(probabilities)
        values = tf.reduce_sum(tf.cast(function(labels, probabilities), tf.float64))
    gradient = tape.gradient(values, probabilities)
    if gradient is None:
        return np.zeros_like(y)
    return -y.shape[-1] * gradient.numpy()


class InvariantCheck(NamedTuple):
    """The TaylorGLO invariant at the null epoch: whether it holds, and by how much."""

    holds: bool
    """``margin >= 0``: the candidate is kept."""
    margin: float
    """``γ(x=1, y=1/n) - (n-1)·γ(x=0, y=1/n)``; negative when rejected."""


def _num_classes(num_classes) -> int:
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise invalid_value("num_classes", "an integer >= 2", num_classes)
    return num_classes


def taylorglo_invariant(theta: Sequence[float], num_classes: int) -> InvariantCheck:
    """Whether a TaylorGLO candidate satisfies the null-epoch invariant, and its margin.

    At the null epoch every output is about ``1/n``. The rule coded in the TaylorGLO reference
    release keeps a candidate iff the target's pull outweighs the push of the ``n - 1``
    non-targets:

    ```
    margin = γ(x=1, y=1/n) - (n - 1) · γ(x=0, y=1/n)
           = (c_y + c_yy + c_hy/n) - (n - 2) · (c1 + c_h/n + c_hh/n²)   ≥ 0
    ```

    (Under softmax the strictly necessary condition, ``γ_target > γ_non-target``, is weaker;
    this stricter heuristic is the one the search uses. :func:`invariant` reports both, for any
    loss.)

    Args:
        theta: the 8 parameters θ0..θ7.
        num_classes: ``n``, at least 2.

    Returns:
        A :class:`InvariantCheck` ``(holds, margin)``.

    Example:

    >>> taylorglo_invariant([0, 0, 0, -2, 0, 2, 0, 0], 10)   # MSE-like: kept
    InvariantCheck(holds=True, margin=3.6)
    >>> taylorglo_invariant([0, 0, 1, 0, 0, 0, 0, 0], 10).holds   # pushes every output up
    False

    References:
        Gonzalez & Miikkulainen, *Optimizing Loss Functions Through Multivariate Taylor
        Polynomial Parameterization*, arXiv:2002.00059.
    """
    n = float(_num_classes(num_classes))
    c = taylor_glo_coefficients(theta)
    pull = c.c_y + c.c_yy + c.c_hy / n
    push = (n - 2.0) * (c.c1 + c.c_h / n + c.c_hh / n**2)
    margin = float(pull - push)
    return InvariantCheck(holds=bool(margin >= 0.0), margin=margin)


@dataclass(frozen=True)
class NullEpochCheck:
    """A loss's learning rule at the null epoch (every output ``1/n``), by autodiff."""

    num_classes: int
    gamma_target: float
    """``γ`` of the true class at ``y = 1/n``."""
    gamma_non_target: float
    """``γ`` of every other class at ``y = 1/n``."""

    @property
    def coded_margin(self) -> float:
        """The TaylorGLO release's rule: ``γ_target - (n - 1)·γ_non-target``."""
        return self.gamma_target - (self.num_classes - 1) * self.gamma_non_target

    @property
    def coded_rule(self) -> bool:
        """The coded rule holds (``coded_margin >= 0``): the search would keep this loss."""
        return self.coded_margin >= 0.0

    @property
    def softmax_margin(self) -> float:
        """``γ_target - γ_non-target``: the target's logit gains on the others iff positive."""
        return self.gamma_target - self.gamma_non_target

    @property
    def softmax_rule(self) -> bool:
        """The softmax condition holds (``softmax_margin > 0``): learning can start."""
        return self.softmax_margin > 0.0

    def to_dict(self) -> dict:
        """Every field and property, for JSON."""
        return {
            "num_classes": self.num_classes,
            "gamma_target": self.gamma_target,
            "gamma_non_target": self.gamma_non_target,
            "coded_rule": self.coded_rule,
            "coded_margin": self.coded_margin,
            "softmax_rule": self.softmax_rule,
            "softmax_margin": self.softmax_margin,
        }


def invariant(loss, num_classes: int) -> NullEpochCheck:
    """The null-epoch check for any loss, by autodiff: the coded rule and the softmax condition.

    Formula: with ``γ`` from :func:`gamma` at ``y = (1/n, ..., 1/n)`` and a one-hot label,

    ```
    coded rule:      γ_target - (n-1)·γ_non-target  ≥ 0     (TaylorGLO release; stricter)
    softmax rule:    γ_target - γ_non-target        > 0     (necessary for learning to start)
    ```

    Under softmax at uniform outputs the target's logit moves by ``(n-1)/n² · (γ_target -
    γ_non-target)`` relative to the others (``∂y/∂z = (I - 11ᵀ/n)/n``), hence the second rule.
    The first is not invariant to a class-constant shift of ``γ``: it is a heuristic. For a
    TaylorGLO loss ``coded_margin`` equals :func:`taylorglo_invariant`'s margin.

    Args:
        loss: anything :func:`gamma` accepts.
        num_classes: ``n``, at least 2.

    Returns:
        A :class:`NullEpochCheck`.

    Example:

    >>> check = invariant("baikal", 10)       # γ = 1/y + x/y² at y = 0.1
    >>> round(check.gamma_target, 9), check.gamma_non_target, check.coded_rule, check.softmax_rule
    (110.0, 10.0, True, True)
    """
    n = _num_classes(num_classes)
    x = np.eye(n)[:1]
    values = gamma(loss, x, np.full((1, n), 1.0 / n))[0]
    return NullEpochCheck(
        num_classes=n, gamma_target=float(values[0]), gamma_non_target=float(values[1:].mean())
    )
