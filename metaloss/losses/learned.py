"""AdaLFL's learned loss: a small network applied to every (label, prediction) pair."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import keras
import numpy as np
from keras import ops

from metaloss.losses._base import (
    ClassificationLoss,
    class_probabilities,
    float_predictions,
    invalid_value,
    one_hot_labels,
)

__all__ = ["LearnedLoss", "learned_loss", "smooth_leaky_relu"]

_REFERENCE = (
    "Raymond, Chen, Xue, Zhang, *Online Loss Function Learning*, arXiv 2301.13247; "
    "Bechtle et al., *Meta-Learning via Learned Loss*, arXiv 1906.05374 (ML3)."
)
_OUTPUT_ACTIVATIONS = ("softplus", "linear")
_TASKS = ("classification", "regression")


def smooth_leaky_relu(u, leak: float = 0.01, smoothness: float = 10.0):
    """The smooth leaky ReLU of AdaLFL's loss network.

    Formula (γ = ``leak``, β = ``smoothness``):

    ```
    φ(u) = (1/β) log(1 + e^{βu}) (1 - γ) + γ u
    ```

    A softplus sharpened by β (β → ∞ gives the leaky ReLU ``max(u, γu)``) whose slope never falls
    below γ, so the loss network's gradient cannot die.

    Args:
        u: a tensor.
        leak: γ, the slope for ``u → -∞``, in ``[0, 1)``. Defaults to `0.01`.
        smoothness: β > 0. Defaults to `10.0`.

    Returns:
        ``φ(u)``, shaped like ``u``.

    Example:

    >>> round(float(smooth_leaky_relu(0.0, leak=0.0, smoothness=1.0)), 4)  # log 2
    0.6931
    """
    u = ops.convert_to_tensor(u)
    return ops.softplus(smoothness * u) * ((1.0 - leak) / smoothness) + leak * u


def _network(inputs, weights, leak, smoothness, output_activation):
    """``ℓ_φ`` on the last axis of ``inputs`` (size 2): dense layers, φ between, one output."""
    hidden = inputs
    layers = len(weights) // 2
    for index in range(layers):
        kernel = ops.cast(weights[2 * index], inputs.dtype)
        bias = ops.cast(weights[2 * index + 1], inputs.dtype)
        hidden = ops.matmul(hidden, kernel) + bias
        if index < layers - 1:
            hidden = smooth_leaky_relu(hidden, leak, smoothness)
    if output_activation == "softplus":
        hidden = ops.softplus(hidden)
    return ops.squeeze(hidden, axis=-1)


def _pairs(y_true, y_pred, task, from_logits):
    """The (label, prediction) pairs the network reads, shaped ``(..., outputs, 2)``."""
    if task == "classification":
        x = one_hot_labels(y_true, y_pred)
        y = class_probabilities(y_pred, from_logits)
    else:
        y = y_pred
        x = ops.reshape(ops.cast(y_true, y.dtype), ops.shape(y))
    return ops.stack([x, y], axis=-1)


def learned_loss(
    y_true,
    y_pred,
    weights: Sequence,
    *,
    leak: float = 0.01,
    smoothness: float = 10.0,
    output_activation: str = "softplus",
    task: str = "classification",
    from_logits: bool = False,
):
    """Computes a learned loss network's value for each sample.

    Formula (C outputs, x = label, y = prediction; for classification x is one-hot and y the
    predicted probabilities):

    ```
    M_φ(x, y) = (1/C) Σ_i ℓ_φ(x_i, y_i)
    ℓ_φ(a, b) = σ( W_L φ( ... φ(W_1 [a, b] + b_1) ... ) + b_L )
    ```

    with φ the :func:`smooth_leaky_relu` and σ the output activation (softplus keeps the loss
    non-negative, ``"linear"`` leaves it unconstrained).

    Args:
        y_true: one-hot labels ``(N, C)`` or class ids ``(N,)`` (classification), or targets shaped
            like ``y_pred`` (regression).
        y_pred: probabilities (logits when ``from_logits=True``) or regression outputs, ``(N, C)``.
        weights: the network's kernels and biases, alternating, first kernel shaped ``(2, units)``
            and last ``(units, 1)``.
        leak: γ of the hidden activation. Defaults to `0.01`.
        smoothness: β of the hidden activation. Defaults to `10.0`.
        output_activation: `"softplus"` or `"linear"`. Defaults to `"softplus"`.
        task: `"classification"` or `"regression"`. Defaults to `"classification"`.
        from_logits: whether classification predictions are logits. Defaults to `False`.

    Returns:
        Per-sample losses, shape ``(N,)``.

    Example:

    >>> # one linear unit reading only the prediction: ℓ(a, b) = b, so M = mean(y) = 0.5
    >>> w = [np.array([[0.0], [1.0]]), np.zeros(1)]
    >>> float(learned_loss([0], [[0.3, 0.7]], w, output_activation="linear")[0])
    0.5

    References:
        Raymond, Chen, Xue, Zhang, *Online Loss Function Learning*, arXiv 2301.13247.
    """
    y_pred, dtype = float_predictions(y_pred)
    pairs = _pairs(y_true, y_pred, task, from_logits)
    values = _network(pairs, weights, leak, smoothness, output_activation)
    return ops.cast(ops.mean(values, axis=-1), dtype)


def _check_architecture(hidden_units, leak, smoothness, output_activation, task):
    if (
        isinstance(hidden_units, str)
        or not isinstance(hidden_units, Sequence)
        or not all(isinstance(u, int) and not isinstance(u, bool) and u > 0 for u in hidden_units)
    ):
        raise invalid_value("hidden_units", "a list of positive integers", hidden_units)
    if isinstance(leak, bool) or not isinstance(leak, int | float) or not 0 <= leak < 1:
        raise invalid_value("leak", "a number in [0, 1)", leak)
    if (
        isinstance(smoothness, bool)
        or not isinstance(smoothness, int | float)
        or not (smoothness > 0 and math.isfinite(smoothness))
    ):
        raise invalid_value("smoothness", "a finite number > 0", smoothness)
    if output_activation not in _OUTPUT_ACTIVATIONS:
        raise invalid_value(
            "output_activation", f"one of {list(_OUTPUT_ACTIVATIONS)}", output_activation
        )
    if task not in _TASKS:
        raise invalid_value("task", f"one of {list(_TASKS)}", task)


def _shapes(hidden_units) -> list[tuple[int, ...]]:
    sizes = [2, *hidden_units, 1]
    shapes = []
    for fan_in, fan_out in itertools.pairwise(sizes):
        shapes += [(fan_in, fan_out), (fan_out,)]
    return shapes


def _initial_weights(shapes, seed) -> list[np.ndarray]:
    """PyTorch's default ``Linear`` initialisation, as in ML3/AdaLFL: ``U(±1/√fan_in)``."""
    rng = np.random.default_rng(seed)
    weights, fan_in = [], shapes[0][0]
    for shape in shapes:
        fan_in = shape[0] if len(shape) == 2 else fan_in
        bound = 1.0 / math.sqrt(fan_in)
        weights.append(rng.uniform(-bound, bound, size=shape))
    return weights


def _given_weights(weights, shapes) -> list[np.ndarray]:
    expected = f"{len(shapes)} arrays of finite numbers shaped {shapes}"
    try:
        arrays = [np.asarray(w, dtype="float64") for w in weights]
    except (TypeError, ValueError):
        raise invalid_value("weights", expected, "an object that is not a list of arrays") from None
    received = [a.shape for a in arrays]
    if received != shapes or not all(np.isfinite(a).all() for a in arrays):
        raise invalid_value("weights", expected, received)
    return arrays


@keras.saving.register_keras_serializable(package="metaloss")
class LearnedLoss(ClassificationLoss):
    """A learned loss network ``M_φ`` (AdaLFL, ML3): see :func:`learned_loss`.

    The network's weights are trainable ``keras.Variable`` s (``loss.trainable_variables``), so a
    metalearner can differentiate through them; ``get_config`` holds the architecture *and* their
    current values, so a model compiled with this loss saves as ``.keras`` and reloads with the
    same learned loss, and :func:`metaloss.losses.save` writes a JSON file that
    ``metaloss train --loss learned_loss.json`` reads.

    The paper's smooth-leaky-ReLU settings are not published with certainty; the defaults here
    (γ = 0.01, β = 10, softplus output) are this library's choice.

    Args:
        hidden_units: units of the hidden layers. Defaults to `(40, 40)`, as in the paper.
        leak: γ of :func:`smooth_leaky_relu`. Defaults to `0.01`.
        smoothness: β of :func:`smooth_leaky_relu`. Defaults to `10.0`.
        output_activation: `"softplus"` (non-negative loss) or `"linear"`.
            Defaults to `"softplus"`.
        weights: the kernels and biases (alternating, as nested lists or arrays). Defaults to
            `None`: drawn from ``U(±1/√fan_in)`` with ``seed``.
        seed: the initialisation seed when ``weights`` is `None`. Defaults to `None` (random).
        task: `"classification"` (one-hot labels against probabilities) or `"regression"`.
            Defaults to `"classification"`.
        from_logits: whether classification predictions are logits. Defaults to `False`.
        reduction: Keras reduction. Defaults to `"sum_over_batch_size"`.
        name: Defaults to `"learned_loss"`.
        dtype: computation dtype. Defaults to `None` (Keras's floatx).

    Example:

    >>> loss = LearnedLoss(seed=0)
    >>> [tuple(w.shape) for w in loss.get_weights()]
    [(2, 40), (40,), (40, 40), (40,), (40, 1), (1,)]

    References:
        Raymond, Chen, Xue, Zhang, *Online Loss Function Learning*, arXiv 2301.13247;
        Bechtle et al., *Meta-Learning via Learned Loss*, arXiv 1906.05374.
    """

    def __init__(
        self,
        hidden_units: Sequence[int] = (40, 40),
        leak: float = 0.01,
        smoothness: float = 10.0,
        output_activation: str = "softplus",
        weights: Sequence | None = None,
        seed: int | None = None,
        task: str = "classification",
        from_logits: bool = False,
        reduction: str | None = "sum_over_batch_size",
        name: str = "learned_loss",
        dtype=None,
    ) -> None:
        super().__init__(from_logits=from_logits, reduction=reduction, name=name, dtype=dtype)
        _check_architecture(hidden_units, leak, smoothness, output_activation, task)
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.leak = float(leak)
        self.smoothness = float(smoothness)
        self.output_activation = output_activation
        self.seed = seed
        self.task = task
        shapes = _shapes(self.hidden_units)
        arrays = (
            _initial_weights(shapes, seed) if weights is None else _given_weights(weights, shapes)
        )
        self.trainable_variables = [
            keras.Variable(array, dtype=self.dtype, trainable=True, name=f"learned_loss_{index}")
            for index, array in enumerate(arrays)
        ]

    def call(self, y_true, y_pred):
        return learned_loss(
            y_true,
            y_pred,
            self.trainable_variables,
            leak=self.leak,
            smoothness=self.smoothness,
            output_activation=self.output_activation,
            task=self.task,
            from_logits=self.from_logits,
        )

    def per_output(self, labels, predictions):
        """``ℓ_φ(labels, predictions)`` elementwise (labels and predictions broadcast together).

        This is the curve the AdaLFL paper plots: the loss of one output as a function of its
        prediction, for a target (label 1) and a non-target (label 0).
        """
        labels, predictions = (ops.convert_to_tensor(v, self.dtype) for v in (labels, predictions))
        shape = ops.shape(labels + predictions)
        pairs = ops.stack(
            [ops.broadcast_to(labels, shape), ops.broadcast_to(predictions, shape)], -1
        )
        return _network(
            pairs, self.trainable_variables, self.leak, self.smoothness, self.output_activation
        )

    def get_weights(self) -> list[np.ndarray]:
        """The network's kernels and biases as NumPy arrays."""
        return [np.array(keras.ops.convert_to_numpy(v)) for v in self.trainable_variables]

    def set_weights(self, weights: Sequence) -> None:
        """Assigns kernels and biases (validated like the ``weights`` argument)."""
        arrays = _given_weights(weights, _shapes(self.hidden_units))
        for variable, array in zip(self.trainable_variables, arrays, strict=True):
            variable.assign(array)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "hidden_units": list(self.hidden_units),
            "leak": self.leak,
            "smoothness": self.smoothness,
            "output_activation": self.output_activation,
            "weights": [w.tolist() for w in self.get_weights()],
            "seed": self.seed,
            "task": self.task,
        }
