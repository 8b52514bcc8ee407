"""Small convnets: Greydanus's MNIST-1D convnet and a two-layer convnet for digit-sized images."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras

from metaloss.models import (
    _check_image_shape,
    _check_input_shape,
    _check_num_classes,
    _check_positive_int,
    _check_positive_ints,
    _check_rate,
    _invalid_argument,
    _logits_layer,
    _model_input,
)

# Greydanus's ConvBase (mnist1d's models.py): kernel sizes 5, 3, 3, stride 2, zero padding 1.
_CNN1D_KERNELS = (5, 3, 3)


def build_cnn1d(
    input_shape: Sequence[int],
    num_classes: int,
    *,
    channels: int = 25,
    normalization: tuple[Any, Any] | None = None,
    name: str = "cnn1d",
) -> keras.Model:
    """Builds the MNIST-1D convnet of Greydanus, which outputs logits.

    A length-``L`` signal (shape ``(L,)``, or ``(L, C)`` with ``C`` channels) goes through three
    ``Conv1D(channels)`` layers with stride 2, zero padding 1 on each side and ReLU, with kernel
    sizes 5, 3 and 3 as in the reference code (``ConvBase`` of the mnist1d repository), then is
    flattened and mapped to the logits by a float32 ``Dense(num_classes)``. On MNIST-1D (``L = 40``)
    the lengths are 40 -> 19 -> 10 -> 5 and the model has 5,210 parameters, as the reference has.

    Args:
        input_shape: ``(L,)`` or ``(L, C)``, e.g. ``(40,)`` for MNIST-1D.
        num_classes: Number of classes (at least 2).
        channels: Number of filters of each convolution. Defaults to ``25``.
        normalization: Optional ``(mean, std)`` pair broadcastable to the last input axis
            (per position for ``(L,)`` inputs, per channel for ``(L, C)``). Defaults to `None`.
        name: Name of the model. Defaults to ``"cnn1d"``.

    Returns:
        A `keras.Model` from a batch of signals to float32 logits ``(batch, num_classes)``.

    Example:

    >>> model = build_cnn1d((40,), 10)
    >>> model.count_params()
    5210

    References:
        - Greydanus, *Scaling down deep learning*, arXiv:2011.14439.
    """
    input_shape = _check_input_shape(input_shape)
    num_classes = _check_num_classes(num_classes)
    channels = _check_positive_int("channels", channels)
    # A convolution maps length n to (n + 2 - k) // 2 + 1: 3 -> 1 -> 1 -> 1 is the shortest input.
    if len(input_shape) > 2 or input_shape[0] < 3:
        raise _invalid_argument(
            "input_shape", "(length,) or (length, channels) with length >= 3", input_shape
        )

    inputs, x = _model_input(input_shape, normalization)
    if len(input_shape) == 1:
        x = keras.layers.Reshape((input_shape[0], 1), name="add_channel_axis")(x)
    for index, kernel in enumerate(_CNN1D_KERNELS, start=1):
        # PyTorch's padding=1: Keras's "same" would pad asymmetrically and change the lengths.
        x = keras.layers.ZeroPadding1D(1, name=f"pad{index}")(x)
        x = keras.layers.Conv1D(
            channels,
            kernel,
            strides=2,
            activation="relu",
            kernel_initializer="he_normal",
            name=f"conv{index}",
        )(x)
    x = keras.layers.Flatten(name="flatten")(x)
    outputs = _logits_layer(num_classes)(x)
    return keras.Model(inputs, outputs, name=name)


def build_cnn(
    input_shape: Sequence[int],
    num_classes: int,
    *,
    filters: Sequence[int] = (32, 64),
    hidden: int = 128,
    dropout: float = 0.25,
    dense_dropout: float = 0.5,
    normalization: tuple[Any, Any] | None = None,
    name: str = "cnn",
) -> keras.Model:
    """Builds a small 2-D convnet for digit-, MNIST- and CIFAR-sized images, outputting logits.

    The classic Keras MNIST convnet: a 3x3 ``Conv2D`` with ReLU (``"valid"`` padding) for each
    entry of ``filters``, 2x2 max-pooling, ``Dropout(dropout)``, flatten, ``Dense(hidden)`` with
    ReLU, ``Dropout(dense_dropout)`` and a float32 ``Dense(num_classes)``. Works on inputs from
    8x8 (scikit-learn's digits) through 28x28 (MNIST) to 32x32x3 (CIFAR): with the default two
    convolutions the sides must be at least 6.

    Args:
        input_shape: ``(height, width, channels)``, e.g. ``(28, 28, 1)``.
        num_classes: Number of classes (at least 2).
        filters: Filters of the successive 3x3 convolutions. Defaults to ``(32, 64)``.
        hidden: Width of the dense hidden layer. Defaults to ``128``.
        dropout: Dropout rate after the pooling, in ``[0, 1)``. Defaults to ``0.25``.
        dense_dropout: Dropout rate after the dense hidden layer. Defaults to ``0.5``.
        normalization: Optional per-channel ``(mean, std)`` pair. Defaults to `None`.
        name: Name of the model. Defaults to ``"cnn"``.

    Returns:
        A `keras.Model` from a batch of images to float32 logits ``(batch, num_classes)``.

    Example:

    >>> model = build_cnn((8, 8, 1), 10)
    >>> model.output_shape
    (None, 10)

    References:
        - LeCun, Bottou, Bengio & Haffner, *Gradient-based learning applied to document
          recognition*, Proc. IEEE 86(11), 1998 (no arXiv id).
        - Chollet et al., Keras example *Simple MNIST convnet* (``mnist_convnet.py``).
    """
    input_shape = _check_input_shape(input_shape)
    num_classes = _check_num_classes(num_classes)
    filters = _check_positive_ints("filters", filters)
    if not filters:
        raise _invalid_argument("filters", "a non-empty tuple of positive integers", filters)
    hidden = _check_positive_int("hidden", hidden)
    dropout = _check_rate("dropout", dropout)
    dense_dropout = _check_rate("dense_dropout", dense_dropout)
    # Each valid 3x3 convolution removes 2 pixels; the 2x2 pooling needs 2 left.
    _check_image_shape("cnn", input_shape, 2 * len(filters) + 2)

    inputs, x = _model_input(input_shape, normalization)
    for index, width in enumerate(filters, start=1):
        x = keras.layers.Conv2D(
            width, 3, activation="relu", kernel_initializer="he_normal", name=f"conv{index}"
        )(x)
    x = keras.layers.MaxPooling2D(2, name="pool")(x)
    if dropout > 0:
        x = keras.layers.Dropout(dropout, name="dropout")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(hidden, activation="relu", name="dense")(x)
    if dense_dropout > 0:
        x = keras.layers.Dropout(dense_dropout, name="dense_dropout")(x)
    outputs = _logits_layer(num_classes)(x)
    return keras.Model(inputs, outputs, name=name)
