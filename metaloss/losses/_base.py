"""Label and probability handling shared by every loss of the zoo.

Every classification loss here accepts one-hot labels *or* sparse integer class ids (Keras casts
both to float before ``call``), and either probabilities (``from_logits=False``, Keras's default)
or logits (``from_logits=True``). Probabilities are clipped away from 0 with Keras's epsilon so
that ``log y`` and ``1 / y`` stay finite; logits go through ``log_softmax`` instead, which is exact.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras
from keras import ops

__all__ = [
    "ClassificationLoss",
    "class_log_probabilities",
    "class_probabilities",
    "float_predictions",
    "invalid_value",
    "loss_step_variable",
    "one_hot_labels",
]


def invalid_value(argument: str, expected: str, received: object) -> ValueError:
    """A ``ValueError`` in Keras's wording: argument name, expectation, received value."""
    return ValueError(
        f"Invalid value for argument `{argument}`. Expected {expected}. "
        f"Received: {argument}={received!r}"
    )


def _num_classes(y_pred) -> int:
    num_classes = y_pred.shape[-1] if len(y_pred.shape) else None
    if num_classes is None or num_classes < 2:
        raise invalid_value(
            "y_pred", "a tensor whose last axis holds at least 2 classes", tuple(y_pred.shape)
        )
    return int(num_classes)


def one_hot_labels(y_true, y_pred):
    """Returns one-hot labels shaped like ``y_pred``, from one-hot or sparse ``y_true``.

    ``y_true`` counts as one-hot (or soft, e.g. label-smoothed) when it has ``y_pred``'s rank and
    class axis; otherwise it holds class ids, shaped ``(N,)`` or ``(N, 1)``.
    """
    num_classes = _num_classes(y_pred)
    y_true = ops.convert_to_tensor(y_true)
    if len(y_true.shape) == len(y_pred.shape) and y_true.shape[-1] == num_classes:
        return ops.cast(y_true, y_pred.dtype)
    if len(y_true.shape) == len(y_pred.shape) and y_true.shape[-1] == 1:
        y_true = ops.squeeze(y_true, axis=-1)
    if len(y_true.shape) != len(y_pred.shape) - 1:
        raise invalid_value(
            "y_true",
            f"one-hot labels shaped like y_pred {tuple(y_pred.shape)} or class ids shaped "
            f"{tuple(y_pred.shape[:-1])}",
            tuple(y_true.shape),
        )
    return ops.one_hot(ops.cast(y_true, "int32"), num_classes, dtype=y_pred.dtype)


_HALF_DTYPES = ("float16", "bfloat16")


def float_predictions(y_pred):
    """``y_pred`` as a tensor of at least float32 precision, and the dtype to return losses in.

    Integers become Keras's floatx. Half-precision predictions are computed on in float32 (the
    polynomial and ``1 / y`` terms overflow float16 long before the loss itself does) and the
    per-sample losses are cast back to the half type by the caller.
    """
    y_pred = ops.convert_to_tensor(y_pred)
    dtype = keras.backend.standardize_dtype(y_pred.dtype)
    if not dtype.startswith(("float", "bfloat")):
        y_pred, dtype = ops.cast(y_pred, keras.config.floatx()), keras.config.floatx()
    if dtype in _HALF_DTYPES:
        y_pred = ops.cast(y_pred, "float32")
    return y_pred, dtype


def class_probabilities(y_pred, from_logits: bool):
    """Softmax of logits, or the given probabilities unchanged."""
    return ops.softmax(y_pred, axis=-1) if from_logits else y_pred


def class_log_probabilities(y_pred, from_logits: bool):
    """``log_softmax`` of logits, or ``log`` of probabilities clipped to ``[epsilon, 1]``."""
    if from_logits:
        return ops.log_softmax(y_pred, axis=-1)
    return ops.log(ops.clip(y_pred, keras.config.epsilon(), 1.0))


def finite_floats(argument: str, values: Sequence[float], length: int | None = None) -> tuple:
    """Validates a vector of finite numbers (optionally of a given length) and returns a tuple."""
    expected = f"{length} finite numbers" if length else "finite numbers"
    try:
        floats = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise invalid_value(argument, expected, values) from None
    if (length is not None and len(floats) != length) or not all(map(math.isfinite, floats)):
        raise invalid_value(argument, expected, list(values))
    return floats


def loss_step_variable(loss) -> keras.Variable | None:
    """The non-trainable step counter of a step-aware (dynamical) loss, or ``None``.

    A loss whose value depends on the training step keeps it in ``loss.step``, a
    ``keras.Variable``; :class:`metaloss.training.LossClock` and the trainer assign it each step.
    """
    step = getattr(loss, "step", None)
    return step if isinstance(step, keras.Variable) else None


class ClassificationLoss(keras.losses.Loss):
    """Base of the zoo's classes: ``from_logits`` plus a config that lists every argument."""

    def __init__(self, *, from_logits: bool, reduction, name: str, dtype) -> None:
        if not isinstance(from_logits, bool):
            raise invalid_value("from_logits", "a bool", from_logits)
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.from_logits = from_logits
        self._dtype_argument = dtype

    def get_config(self) -> dict:
        dtype = self._dtype_argument
        if dtype is not None and not isinstance(dtype, str):
            dtype = keras.saving.serialize_keras_object(dtype)
        return {**super().get_config(), "dtype": dtype, "from_logits": self.from_logits}
