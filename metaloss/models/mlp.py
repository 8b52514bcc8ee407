"""The multilayer perceptron: dense layers on the flattened input."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras

from metaloss.models import (
    _check_input_shape,
    _check_num_classes,
    _check_positive_ints,
    _check_rate,
    _invalid_argument,
    _logits_layer,
    _model_input,
)


def build_mlp(
    input_shape: Sequence[int],
    num_classes: int,
    *,
    hidden: Sequence[int] = (128, 128),
    activation: str = "relu",
    dropout: float = 0.0,
    normalization: tuple[Any, Any] | None = None,
    name: str = "mlp",
) -> keras.Model:
    """Builds a multilayer perceptron classifier that outputs logits.

    The input (of any shape: feature vectors, 2-D points, images) is flattened, passed through
    ``Dense(units, activation)`` for each entry of ``hidden`` (each followed by ``Dropout`` when
    ``dropout > 0``) and a final float32 ``Dense(num_classes)`` without activation.

    Args:
        input_shape: Shape of one example, without the batch axis, e.g. ``(40,)``.
        num_classes: Number of classes (at least 2).
        hidden: Widths of the hidden layers; ``()`` gives multinomial logistic regression.
            Defaults to ``(128, 128)``.
        activation: Keras activation of the hidden layers. Defaults to ``"relu"``.
        dropout: Dropout rate after each hidden layer, in ``[0, 1)``. Defaults to ``0.0``.
        normalization: Optional ``(mean, std)`` pair broadcastable to the last input axis; when
            given the model starts with a ``Normalization`` layer. Defaults to `None`.
        name: Name of the model. Defaults to ``"mlp"``.

    Returns:
        A `keras.Model` from a batch of inputs to float32 logits ``(batch, num_classes)``.

    Example:

    >>> model = build_mlp((40,), 10, hidden=(100, 100))
    >>> model.output_shape
    (None, 10)

    References:
        - Rumelhart, Hinton & Williams, *Learning representations by back-propagating errors*,
          Nature 323, 1986 (no arXiv id).
    """
    input_shape = _check_input_shape(input_shape)
    num_classes = _check_num_classes(num_classes)
    hidden = _check_positive_ints("hidden", hidden)
    dropout = _check_rate("dropout", dropout)
    try:
        keras.activations.get(activation)
    except (ValueError, TypeError):
        raise _invalid_argument(
            "activation", "the name of a Keras activation", activation
        ) from None

    inputs, x = _model_input(input_shape, normalization)
    if len(input_shape) > 1:
        x = keras.layers.Flatten(name="flatten")(x)
    for index, units in enumerate(hidden, start=1):
        x = keras.layers.Dense(units, activation=activation, name=f"dense{index}")(x)
        if dropout > 0:
            x = keras.layers.Dropout(dropout, name=f"dropout{index}")(x)
    outputs = _logits_layer(num_classes)(x)
    return keras.Model(inputs, outputs, name=name)
