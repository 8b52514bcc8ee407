"""A warning for the commonest silent mistake: a probability loss fed logits.

Keras's crossentropies and the zoo's losses default to ``from_logits=False``, while metaloss
models (and most research code) end in a linear layer. Fed logits, a probability loss clips
them into [ε, 1 - ε] and trains on nonsense without any error. The check runs once, on the
first batch, eagerly and outside the compiled step.
"""

from __future__ import annotations

import warnings

import numpy as np

__all__ = ["warn_if_not_probabilities"]

_TOLERANCE = 1e-3


def expects_probabilities(loss) -> bool:
    """Whether ``loss`` reads its predictions as class probabilities (``from_logits=False``)."""
    if getattr(loss, "task", "classification") != "classification":
        return False
    return getattr(loss, "from_logits", None) is False


def warn_if_not_probabilities(loss, predictions) -> bool:
    """Warns when a ``from_logits=False`` loss gets predictions that are not probabilities.

    Probabilities lie in [0, 1] and each row sums to 1 (within 1e-3).

    Args:
        loss: the loss about to be trained with.
        predictions: the model's outputs on one batch, ``(N, C)``.

    Returns:
        Whether it warned.
    """
    if not expects_probabilities(loss):
        return False
    values = np.asarray(predictions, np.float64)
    if values.ndim < 2 or values.size == 0:
        return False
    low, high = float(values.min()), float(values.max())
    sums = values.sum(axis=-1)
    if low >= -_TOLERANCE and high <= 1 + _TOLERANCE and np.all(abs(sums - 1) <= _TOLERANCE):
        return False
    name = getattr(loss, "name", type(loss).__name__)
    warnings.warn(
        f"The loss {name!r} expects probabilities (from_logits=False), but the model's outputs "
        f"on the first batch lie in [{low:.3g}, {high:.3g}] with rows summing to "
        f"{float(sums.min()):.3g}..{float(sums.max()):.3g}: they look like logits. Create the "
        "loss with from_logits=True (e.g. metaloss.losses.get('baikal', from_logits=True), or "
        "'baikal:from_logits=true' on the command line), or end the model with a softmax.",
        UserWarning,
        stacklevel=3,
    )
    return True
