"""Cyclic class-emphasis: a dynamical loss whose class weights oscillate during training."""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import ops

from metaloss.losses._base import (
    ClassificationLoss,
    class_log_probabilities,
    float_predictions,
    invalid_value,
    one_hot_labels,
)

__all__ = ["CyclicClassEmphasis", "cyclic_class_emphasis", "cyclic_weights"]

_REFERENCE = (
    "Ruiz-Garcia, Zhang, Schoenholz, Liu, *Tilting the playing field: Dynamical loss functions "
    "for machine learning*, arXiv 2102.03793 (ICML 2021)."
)


def _check_schedule(num_classes, period, amplitude, order, final_plain_period, num_periods):
    """Validates the schedule arguments; returns the class order as a tuple of ints."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise invalid_value("num_classes", "an integer >= 2", num_classes)
    if isinstance(period, bool) or not isinstance(period, int) or period < 1:
        raise invalid_value("period", "an integer >= 1", period)
    if isinstance(amplitude, bool) or not isinstance(amplitude, int | float) or not amplitude >= 1:
        raise invalid_value("amplitude", "a number >= 1", amplitude)
    order = tuple(range(num_classes)) if order is None else order
    if (
        isinstance(order, str)
        or not isinstance(order, Sequence)
        or not order
        or not all(isinstance(c, int) and not isinstance(c, bool) for c in order)
        or not all(0 <= c < num_classes for c in order)
    ):
        raise invalid_value("order", f"a non-empty list of class ids in [0, {num_classes})", order)
    if not isinstance(final_plain_period, bool):
        raise invalid_value("final_plain_period", "a bool", final_plain_period)
    if final_plain_period and (
        isinstance(num_periods, bool) or not isinstance(num_periods, int) or num_periods < 1
    ):
        raise invalid_value(
            "num_periods", "an integer >= 1 when final_plain_period=True", num_periods
        )
    return tuple(int(c) for c in order)


def cyclic_weights(
    step,
    num_classes: int,
    period: int,
    amplitude: float,
    order: Sequence[int] | None = None,
    final_plain_period: bool = False,
    num_periods: int | None = None,
):
    """Class weights Γ(t) of the cyclic class-emphasis loss at training step(s) ``step``.

    Formula (period T, amplitude A, emphasised class c of the current period, t = step mod T):

    ```
    w_c(t) = 1 + 2(A-1) t/T          for 0 ≤ t < T/2
    w_c(t) = 2A - 1 - 2(A-1) t/T     for T/2 ≤ t < T        (1 → A → 1, a triangle wave)
    w_i(t) = 1                        for every other class i
    Γ_i(t) = C · w_i / Σ_j w_j        (so Σ_i Γ_i = C)
    ```

    Period ``p = step // T`` emphasises class ``order[p mod len(order)]``. With
    ``final_plain_period=True``, period ``num_periods - 1`` and any later step use A = 1, i.e.
    plain cross-entropy.

    Args:
        step: a scalar or array of non-negative integer steps.
        num_classes: number of classes C, at least 2.
        period: period length T in steps, at least 1.
        amplitude: peak weight A of the emphasised class, at least 1.
        order: the classes to emphasise, one per period, cycled. Defaults to `0, 1, ..., C-1`.
        final_plain_period: end with one period of plain cross-entropy. Defaults to `False`.
        num_periods: total number of periods of the schedule; needed when
            ``final_plain_period=True``. Defaults to `None`.

    Returns:
        Weights of shape ``step.shape + (C,)``, float32.

    Example:

    >>> # Half-way through the first period class 0 peaks at A = 3: w = (3, 1, 1), Γ = 3w/5.
    >>> [round(float(v), 2) for v in cyclic_weights(5, 3, period=10, amplitude=3)]
    [1.8, 0.6, 0.6]

    References:
        Ruiz-Garcia, Zhang, Schoenholz, Liu, *Tilting the playing field: Dynamical loss functions
        for machine learning*, arXiv 2102.03793 (ICML 2021).
    """
    order = _check_schedule(num_classes, period, amplitude, order, final_plain_period, num_periods)
    step = ops.cast(ops.convert_to_tensor(step), "int32")
    period_index = ops.floor_divide(step, period)
    phase = ops.cast(step - period_index * period, "float32") / period
    rise = 1.0 + 2.0 * (amplitude - 1.0) * phase
    fall = 2.0 * amplitude - 1.0 - 2.0 * (amplitude - 1.0) * phase
    peak = ops.where(phase < 0.5, rise, fall)
    if final_plain_period:
        peak = ops.where(period_index >= num_periods - 1, ops.ones_like(peak), peak)
    emphasised = ops.take(ops.convert_to_tensor(order, "int32"), period_index % len(order))
    mask = ops.one_hot(emphasised, num_classes, dtype="float32")
    weights = 1.0 + mask * ops.expand_dims(peak - 1.0, -1)
    return num_classes * weights / ops.sum(weights, axis=-1, keepdims=True)


def cyclic_class_emphasis(y_true, y_pred, class_weights, *, from_logits: bool = False):
    """Computes the class-weighted cross-entropy of each sample, ``-Σ_i Γ_i x_i log y_i``.

    With one-hot ``x`` this is ``Γ_{y_s} · CE_s`` per sample: the paper's dynamical loss once
    ``class_weights`` is :func:`cyclic_weights` at the current step.

    Args:
        y_true: one-hot labels ``(N, C)`` or class ids ``(N,)``.
        y_pred: probabilities, or logits when ``from_logits=True``, shape ``(N, C)``.
        class_weights: Γ, shape ``(C,)``.
        from_logits: whether ``y_pred`` holds logits. Defaults to `False`.

    Returns:
        Per-sample losses, shape ``(N,)``.

    Example:

    >>> # Γ = (1.8, 0.6, 0.6), target class 0 with probability 0.5: 1.8 · log 2
    >>> round(float(cyclic_class_emphasis([0], [[0.5, 0.25, 0.25]], [1.8, 0.6, 0.6])[0]), 4)
    1.2477

    References:
        Ruiz-Garcia, Zhang, Schoenholz, Liu, *Tilting the playing field: Dynamical loss functions
        for machine learning*, arXiv 2102.03793 (ICML 2021).
    """
    y_pred, dtype = float_predictions(y_pred)
    x = one_hot_labels(y_true, y_pred)
    gamma = ops.cast(ops.convert_to_tensor(class_weights), y_pred.dtype)
    losses = -ops.sum(gamma * x * class_log_probabilities(y_pred, from_logits), axis=-1)
    return ops.cast(losses, dtype)


@keras.saving.register_keras_serializable(package="metaloss")
class CyclicClassEmphasis(ClassificationLoss):
    """Dynamical loss that cyclically emphasises one class at a time (a triangle wave in time).

    Formula: ``F(t) = -(1/N) Σ_s Γ_{y_s}(t) log softmax(z_s)_{y_s}`` with Γ from
    :func:`cyclic_weights`. The training step lives in ``self.step``, a non-trainable
    ``keras.Variable`` read at run time (never baked into a compiled step): the metaloss
    ``Trainer`` advances it itself; under ``model.fit`` add :class:`metaloss.training.LossClock`.
    The step is training state, not configuration: it is not saved with a model.

    Args:
        num_classes: number of classes C, at least 2.
        period: period T in training steps, at least 1.
        amplitude: peak weight A of the emphasised class, at least 1 (A = 1 is cross-entropy).
        order: the classes to emphasise, one per period, cycled. Defaults to all classes in order.
        final_plain_period: end with one period of plain cross-entropy. Defaults to `False`.
        num_periods: total number of periods; required with ``final_plain_period``.
            Defaults to `None`.
        from_logits: whether predictions are logits. Defaults to `False`.
        reduction: Keras reduction. Defaults to `"sum_over_batch_size"`.
        name: Defaults to `"cyclic_class_emphasis"`.
        dtype: computation dtype. Defaults to `None` (Keras's floatx).

    Example:

    >>> loss = CyclicClassEmphasis(3, period=10, amplitude=3)
    >>> _ = loss.step.assign(5)
    >>> round(float(loss([0], [[0.5, 0.25, 0.25]])), 4)
    1.2477

    References:
        Ruiz-Garcia, Zhang, Schoenholz, Liu, *Tilting the playing field: Dynamical loss functions
        for machine learning*, arXiv 2102.03793 (ICML 2021).
    """

    def __init__(
        self,
        num_classes: int,
        period: int,
        amplitude: float,
        order: Sequence[int] | None = None,
        final_plain_period: bool = False,
        num_periods: int | None = None,
        from_logits: bool = False,
        reduction: str | None = "sum_over_batch_size",
        name: str = "cyclic_class_emphasis",
        dtype=None,
    ) -> None:
        super().__init__(from_logits=from_logits, reduction=reduction, name=name, dtype=dtype)
        order = _check_schedule(
            num_classes, period, amplitude, order, final_plain_period, num_periods
        )
        self.num_classes = num_classes
        self.period = period
        self.amplitude = float(amplitude)
        self.order = list(order)
        self.final_plain_period = final_plain_period
        self.num_periods = num_periods
        self.step = keras.Variable(0, dtype="int32", trainable=False, name="loss_step")

    def class_weights(self, step=None):
        """Γ at ``step`` (defaults to the current ``self.step``), shape ``(C,)``."""
        return cyclic_weights(
            self.step.value if step is None else step,
            self.num_classes,
            self.period,
            self.amplitude,
            self.order,
            self.final_plain_period,
            self.num_periods,
        )

    def call(self, y_true, y_pred):
        return cyclic_class_emphasis(
            y_true, y_pred, self.class_weights(), from_logits=self.from_logits
        )

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "period": self.period,
            "amplitude": self.amplitude,
            "order": list(self.order),
            "final_plain_period": self.final_plain_period,
            "num_periods": self.num_periods,
        }
