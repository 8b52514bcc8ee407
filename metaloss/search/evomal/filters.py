"""EvoMAL's two filters, applied to a candidate loss before any model is trained with it.

- **Rejection protocol.** Take the predictions (logits) of an untrained model on a sample of
  training inputs and optimise them *directly* with the candidate loss (Adam, a fixed number of
  steps). A loss under which the error rate of those predictions does not fall cannot train a
  model either: it is rejected untrained.
- **Gradient equivalence.** Two losses whose gradients with respect to the predictions agree on
  that sample (e.g. losses that differ by a constant) train alike; a candidate equivalent to an
  already scored one reuses its score.

Settings from EvoMAL's public configuration: 100 gradient steps on a sample of 100 predictions,
Adam at the base learning rate 0.01.

References:
    Raymond, Chen, Xue, Zhang, *Learning Symbolic Model-Agnostic Loss Functions via
    Meta-Learning*, IEEE TPAMI 2023, arXiv 2209.08907.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from metaloss.losses._base import invalid_value

__all__ = [
    "DEFAULT_FILTER_GRADIENT_STEPS",
    "DEFAULT_FILTER_LEARNING_RATE",
    "DEFAULT_FILTER_SAMPLE_SIZE",
    "GradientEquivalence",
    "Rejection",
    "rejection_protocol",
]

DEFAULT_FILTER_GRADIENT_STEPS = 100
DEFAULT_FILTER_SAMPLE_SIZE = 100
DEFAULT_FILTER_LEARNING_RATE = 0.01


@dataclass(frozen=True)
class Rejection:
    """What the rejection protocol saw: the error rate of the sample before and after."""

    rejected: bool
    error_before: float
    error_after: float
    finite: bool = True


def _error_rate(logits, labels) -> float:
    return float(np.mean(np.argmax(logits, axis=-1) != labels))


def _class_ids(labels) -> np.ndarray:
    labels = np.asarray(labels)
    return np.argmax(labels, axis=-1) if labels.ndim == 2 else labels.astype("int64")


def _check_sample(logits, labels):
    logits = np.asarray(logits, dtype="float32")
    if logits.ndim != 2 or logits.shape[1] < 2 or not np.isfinite(logits).all():
        raise invalid_value("logits", "a finite (N, C) array with C >= 2", logits.shape)
    classes = _class_ids(labels)
    if classes.shape != (logits.shape[0],):
        raise invalid_value(
            "labels", f"{logits.shape[0]} class ids or one-hot rows", np.shape(labels)
        )
    return logits, classes


def rejection_protocol(
    loss: keras.losses.Loss,
    logits,
    labels,
    *,
    steps: int = DEFAULT_FILTER_GRADIENT_STEPS,
    learning_rate: float = DEFAULT_FILTER_LEARNING_RATE,
) -> Rejection:
    """Optimises ``logits`` directly with ``loss`` and rejects it unless their error rate falls.

    Args:
        loss: the candidate, reading logits (``from_logits=True``).
        logits: predictions of an untrained model on a sample, ``(N, C)``.
        labels: the sample's class ids ``(N,)`` or one-hot labels ``(N, C)``.
        steps: Adam steps on the logits. Defaults to `100` (EvoMAL's).
        learning_rate: Adam's learning rate. Defaults to `0.01` (EvoMAL's base rate).

    Returns:
        A :class:`Rejection`; a loss that turns non-finite is rejected (``finite=False``).
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise invalid_value("steps", "a positive integer", steps)
    logits, classes = _check_sample(logits, labels)
    one_hot = tf.one_hot(classes, logits.shape[1])
    predictions = tf.Variable(logits)
    optimizer = keras.optimizers.Adam(learning_rate)
    optimizer.build([predictions])

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            value = loss(one_hot, predictions)
        gradient = tape.gradient(value, predictions)
        if gradient is None:  # a loss that does not read the predictions
            gradient = tf.zeros_like(predictions)
        finite = tf.math.is_finite(value) & tf.reduce_all(tf.math.is_finite(gradient))
        if finite:
            optimizer.apply_gradients([(gradient, predictions)])
        return finite

    before = _error_rate(logits, classes)
    for _ in range(steps):
        if not bool(step()):
            return Rejection(True, before, before, finite=False)
    after = _error_rate(predictions.numpy(), classes)
    return Rejection(after >= before, before, after)


class GradientEquivalence:
    """An archive of candidates' gradients on one sample, to find equivalent losses.

    The fingerprint of a loss is ``∂L/∂z`` at the sample's logits ``z``; two losses are
    equivalent when their fingerprints agree within ``rtol``/``atol`` (``numpy.allclose``).

    Args:
        logits: the sample's predictions, ``(N, C)``.
        labels: class ids or one-hot labels.
        rtol: relative tolerance. Defaults to `1e-4`.
        atol: absolute tolerance. Defaults to `1e-6`.

    Example:

    ```python
    archive = GradientEquivalence(logits, labels)
    key = archive.match(candidate)        # an earlier candidate's key, or None
    if key is None:
        score = train_and_score(candidate)
        archive.add(candidate_key, candidate)
    ```
    """

    def __init__(self, logits, labels, *, rtol: float = 1e-4, atol: float = 1e-6) -> None:
        logits, classes = _check_sample(logits, labels)
        self._logits = tf.constant(logits)
        self._labels = tf.one_hot(classes, logits.shape[1])
        self.rtol, self.atol = float(rtol), float(atol)
        self._archive: dict[Hashable, np.ndarray] = {}

    def fingerprint(self, loss: keras.losses.Loss) -> np.ndarray:
        """``∂L/∂z`` of ``loss`` (reading logits) at the sample, an ``(N, C)`` array."""
        with tf.GradientTape() as tape:
            tape.watch(self._logits)
            value = loss(self._labels, self._logits)
        gradient = tape.gradient(value, self._logits)
        return np.zeros(self._logits.shape) if gradient is None else gradient.numpy()

    def match(self, loss: keras.losses.Loss) -> Hashable | None:
        """The key of the first archived loss equivalent to ``loss``, or `None`."""
        gradient = self.fingerprint(loss)
        if not np.isfinite(gradient).all():
            return None
        for key, archived in self._archive.items():
            if np.allclose(gradient, archived, rtol=self.rtol, atol=self.atol):
                return key
        return None

    def add(self, key: Hashable, loss: keras.losses.Loss) -> None:
        """Archives ``loss`` under ``key`` (a scored candidate)."""
        self._archive[key] = self.fingerprint(loss)

    def __len__(self) -> int:
        return len(self._archive)
