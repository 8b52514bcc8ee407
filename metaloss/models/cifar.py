"""Plain (non-residual) CIFAR convnets: Springenberg et al.'s All-CNN-C and the CIFAR AlexNet."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras

from metaloss.models import (
    _check_image_shape,
    _check_input_shape,
    _check_num_classes,
    _check_rate,
    _logits_layer,
    _model_input,
)


def _conv(x: Any, filters: int, kernel_size: int, name: str, **kwargs: Any) -> Any:
    return keras.layers.Conv2D(
        filters, kernel_size, kernel_initializer="he_normal", name=name, **kwargs
    )(x)


def build_allcnn_c(
    input_shape: Sequence[int],
    num_classes: int,
    *,
    input_dropout: float = 0.2,
    dropout: float = 0.5,
    normalization: tuple[Any, Any] | None = None,
    name: str = "allcnn_c",
) -> keras.Model:
    """Builds All-CNN-C of Springenberg et al., a convnet without pooling layers, giving logits.

    Table 2 of the paper, with its dropout (section 3.2.1: 20% on the input, 50% after each
    layer that replaces a pooling layer): ``Dropout(0.2)``; 3x3 conv 96, 3x3 conv 96, 3x3 conv 96
    with stride 2; ``Dropout(0.5)``; 3x3 conv 192 twice, 3x3 conv 192 with stride 2;
    ``Dropout(0.5)``; 3x3 conv 192 (``"valid"``: 8x8 -> 6x6), 1x1 conv 192, 1x1 conv
    ``num_classes``; global average pooling. All convolutions have biases and ReLU except the
    last, which gives the logits (the paper applies a ReLU there too, which would forbid negative
    logits). 1,369,738 parameters for 10 classes (the paper's "1.4M").

    Args:
        input_shape: ``(height, width, channels)`` with sides of at least 9, e.g.
            ``(32, 32, 3)``.
        num_classes: Number of classes (at least 2).
        input_dropout: Dropout rate on the input, in ``[0, 1)``. Defaults to ``0.2``.
        dropout: Dropout rate after each stride-2 convolution, in ``[0, 1)``. Defaults to
            ``0.5``.
        normalization: Optional per-channel ``(mean, std)`` pair, applied before the input
            dropout. Defaults to `None`.
        name: Name of the model. Defaults to ``"allcnn_c"``.

    Returns:
        A `keras.Model` from a batch of images to float32 logits ``(batch, num_classes)``.

    Example:

    >>> model = build_allcnn_c((32, 32, 3), 10)
    >>> model.count_params()
    1369738

    References:
        - Springenberg, Dosovitskiy, Brox & Riedmiller, *Striving for Simplicity: The All
          Convolutional Net*, arXiv:1412.6806.
    """
    input_shape = _check_input_shape(input_shape)
    num_classes = _check_num_classes(num_classes)
    input_dropout = _check_rate("input_dropout", input_dropout)
    dropout = _check_rate("dropout", dropout)
    # Two stride-2 "same" convolutions map 9 -> 5 -> 3, which the valid 3x3 convolution needs.
    _check_image_shape("allcnn_c", input_shape, 9)

    inputs, x = _model_input(input_shape, normalization)
    if input_dropout > 0:
        x = keras.layers.Dropout(input_dropout, name="input_dropout")(x)
    layer = 0
    for block, filters in enumerate((96, 192), start=1):
        for strides in (1, 1, 2):
            layer += 1
            x = _conv(
                x, filters, 3, f"conv{layer}", strides=strides, padding="same", activation="relu"
            )
        if dropout > 0:
            x = keras.layers.Dropout(dropout, name=f"dropout{block}")(x)
    x = _conv(x, 192, 3, "conv7", padding="valid", activation="relu")
    x = _conv(x, 192, 1, "conv8", activation="relu")
    x = _conv(x, num_classes, 1, "conv9")
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = keras.layers.Activation("linear", dtype="float32", name="logits")(x)
    return keras.Model(inputs, outputs, name=name)


def build_alexnet(
    input_shape: Sequence[int],
    num_classes: int,
    *,
    normalization: tuple[Any, Any] | None = None,
    name: str = "alexnet",
) -> keras.Model:
    """Builds the CIFAR AlexNet of the pytorch-classification repository, outputting logits.

    The AlexNet used for CIFAR in the TaylorGLO experiments, layer for layer (PyTorch's explicit
    paddings reproduced with ``ZeroPadding2D`` where ``"same"`` would differ): conv 64 11x11
    stride 4 padding 5, ReLU, 2x2 max-pool; conv 192 5x5 padding 2, ReLU, max-pool; conv 384 3x3,
    ReLU; conv 256 3x3, ReLU; conv 256 3x3, ReLU; max-pool; flatten; a float32
    ``Dense(num_classes)``. On 32x32 inputs the feature map is 8 -> 4 -> 2 -> 1 pixels wide, so
    the classifier sees 256 features; 2,472,266 parameters for 10 classes.

    Args:
        input_shape: ``(height, width, channels)`` with sides of at least 29, e.g.
            ``(32, 32, 3)``.
        num_classes: Number of classes (at least 2).
        normalization: Optional per-channel ``(mean, std)`` pair. Defaults to `None`.
        name: Name of the model. Defaults to ``"alexnet"``.

    Returns:
        A `keras.Model` from a batch of images to float32 logits ``(batch, num_classes)``.

    Example:

    >>> model = build_alexnet((32, 32, 3), 10)
    >>> model.count_params()
    2472266

    References:
        - Krizhevsky, Sutskever & Hinton, *ImageNet Classification with Deep Convolutional
          Neural Networks*, NeurIPS 2012 (no arXiv id).
        - Yang, *pytorch-classification* (``models/cifar/alexnet.py``), GitHub, 2017.
        - Gonzalez & Miikkulainen, *Optimizing Loss Functions Through Multivariate Taylor
          Polynomial Parameterization* (TaylorGLO), arXiv:2002.00059.
    """
    input_shape = _check_input_shape(input_shape)
    num_classes = _check_num_classes(num_classes)
    # floor((side - 1) / 4) + 1 after the first convolution must survive three 2x2 poolings.
    _check_image_shape("alexnet", input_shape, 29)

    inputs, x = _model_input(input_shape, normalization)
    x = keras.layers.ZeroPadding2D(5, name="pad1")(x)
    x = _conv(x, 64, 11, "conv1", strides=4, activation="relu")
    x = keras.layers.MaxPooling2D(2, name="pool1")(x)
    x = _conv(x, 192, 5, "conv2", padding="same", activation="relu")
    x = keras.layers.MaxPooling2D(2, name="pool2")(x)
    x = _conv(x, 384, 3, "conv3", padding="same", activation="relu")
    x = _conv(x, 256, 3, "conv4", padding="same", activation="relu")
    x = _conv(x, 256, 3, "conv5", padding="same", activation="relu")
    x = keras.layers.MaxPooling2D(2, name="pool3")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    outputs = _logits_layer(num_classes)(x)
    return keras.Model(inputs, outputs, name=name)
