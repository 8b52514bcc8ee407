"""Residual networks for CIFAR: ResNet-20/32/56, the pre-activation ResNet and the Wide ResNet.

All three share the CIFAR layout of He et al.: a 3x3 convolution with 16 filters, three stages of
basic blocks (two 3x3 convolutions) at 32x32, 16x16 and 8x8 resolution (the first block of
stages 2 and 3 has stride 2), global average pooling and a dense classifier. Convolutions have no
bias (a batch normalization follows or precedes each), He-normal kernels, and batch normalization
uses PyTorch's momentum 0.1 (Keras's 0.9) and epsilon 1e-5, as in the papers' code.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras

from metaloss.models import (
    _check_image_shape,
    _check_input_shape,
    _check_num_classes,
    _check_positive_int,
    _check_rate,
    _invalid_argument,
    _logits_layer,
    _model_input,
)

_STAGE_FILTERS = (16, 32, 64)


def _conv(x: Any, filters: int, kernel_size: int, strides: int, name: str) -> Any:
    return keras.layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding="same",
        use_bias=False,
        kernel_initializer="he_normal",
        name=name,
    )(x)


def _bn(x: Any, name: str) -> Any:
    return keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=name)(x)


def _relu(x: Any, name: str) -> Any:
    return keras.layers.ReLU(name=name)(x)


def _shortcut_a(x: Any, filters: int, strides: int, name: str) -> Any:
    """He et al.'s option A: identity, subsampled by ``strides``, channels zero-padded.

    Parameter-free and built from stock layers only (so saved models load without custom
    objects): a 1x1 max-pooling with stride 2 keeps every other row and column, and a
    ``ZeroPadding3D`` over ``(height, width, channels, 1)`` pads the channel axis.
    """
    if strides > 1:
        x = keras.layers.MaxPooling2D(1, strides=strides, name=f"{name}_subsample")(x)
    height, width, channels = x.shape[1:]
    if filters > channels:
        before = (filters - channels) // 2
        after = filters - channels - before
        x = keras.layers.Reshape((height, width, channels, 1), name=f"{name}_expand")(x)
        x = keras.layers.ZeroPadding3D(
            ((0, 0), (0, 0), (before, after)), data_format="channels_last", name=f"{name}_pad"
        )(x)
        x = keras.layers.Reshape((height, width, filters), name=f"{name}_squeeze")(x)
    return x


def _check_resnet_depth(depth: Any) -> int:
    if _check_positive_int("depth", depth) < 8 or (depth - 2) % 6:
        raise _invalid_argument("depth", "an integer 6n + 2 with n >= 1 (e.g. 20, 32, 56)", depth)
    return int(depth)


def build_resnet(
    input_shape: Sequence[int],
    num_classes: int,
    *,
    depth: int = 20,
    normalization: tuple[Any, Any] | None = None,
    name: str | None = None,
) -> keras.Model:
    """Builds He et al.'s CIFAR ResNet (post-activation, option-A shortcuts), outputting logits.

    ``conv3x3(16)-BN-ReLU``, then three stages of ``n = (depth - 2) / 6`` basic blocks with 16,
    32 and 64 filters, each block ``conv3x3-BN-ReLU-conv3x3-BN``, added to the shortcut, then ReLU.
    Shortcuts are parameter-free (option A: identity, subsampled and zero-padded where the shape
    changes), so the parameter counts are those of the paper: 0.27M (ResNet-20), 0.46M (32),
    0.85M (56), 1.7M (110). Global average pooling and a float32 ``Dense(num_classes)`` end it.

    Args:
        input_shape: ``(height, width, channels)``, e.g. ``(32, 32, 3)``.
        num_classes: Number of classes (at least 2).
        depth: Number of weighted layers, ``6n + 2``. Defaults to ``20``.
        normalization: Optional per-channel ``(mean, std)`` pair. Defaults to `None`.
        name: Name of the model. Defaults to ``f"resnet{depth}"``.

    Returns:
        A `keras.Model` from a batch of images to float32 logits ``(batch, num_classes)``.

    Example:

    >>> model = build_resnet((32, 32, 3), 10, depth=20)
    >>> model.name
    'resnet20'

    References:
        - He, Zhang, Ren & Sun, *Deep Residual Learning for Image Recognition*,
          arXiv:1512.03385 (section 4.2 and its table 6).
    """
    input_shape = _check_input_shape(input_shape)
    num_classes = _check_num_classes(num_classes)
    depth = _check_resnet_depth(depth)
    _check_image_shape(f"resnet{depth}", input_shape, 1)
    blocks = (depth - 2) // 6

    inputs, x = _model_input(input_shape, normalization)
    x = _conv(x, _STAGE_FILTERS[0], 3, 1, "stem_conv")
    x = _relu(_bn(x, "stem_bn"), "stem_relu")
    for stage, filters in enumerate(_STAGE_FILTERS, start=1):
        for block in range(1, blocks + 1):
            prefix = f"stage{stage}_block{block}"
            strides = 2 if stage > 1 and block == 1 else 1
            shortcut = _shortcut_a(x, filters, strides, f"{prefix}_shortcut")
            x = _conv(x, filters, 3, strides, f"{prefix}_conv1")
            x = _relu(_bn(x, f"{prefix}_bn1"), f"{prefix}_relu1")
            x = _conv(x, filters, 3, 1, f"{prefix}_conv2")
            x = _bn(x, f"{prefix}_bn2")
            x = keras.layers.Add(name=f"{prefix}_add")([shortcut, x])
            x = _relu(x, f"{prefix}_relu2")
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = _logits_layer(num_classes)(x)
    return keras.Model(inputs, outputs, name=name or f"resnet{depth}")


def build_preresnet(
    input_shape: Sequence[int],
    num_classes: int,
    *,
    depth: int = 20,
    normalization: tuple[Any, Any] | None = None,
    name: str | None = None,
) -> keras.Model:
    """Builds the pre-activation CIFAR ResNet of He et al. (identity mappings), outputting logits.

    The layout of :func:`build_resnet` (``conv3x3(16)``, three stages of ``(depth - 2) / 6``
    blocks with 16, 32 and 64 filters, option-A shortcuts) with pre-activation blocks
    ``BN-ReLU-conv3x3-BN-ReLU-conv3x3`` whose sum with the shortcut is not activated, so that the
    identity path runs unchanged from the stem to the final ``BN-ReLU``, global average pooling
    and float32 ``Dense(num_classes)``. Exactly the parameter count of the post-activation network
    (its stem batch normalization moves to the end): 0.27M for depth 20.

    Args:
        input_shape: ``(height, width, channels)``, e.g. ``(32, 32, 3)``.
        num_classes: Number of classes (at least 2).
        depth: Number of weighted layers, ``6n + 2``. Defaults to ``20``.
        normalization: Optional per-channel ``(mean, std)`` pair. Defaults to `None`.
        name: Name of the model. Defaults to ``f"preresnet{depth}"``.

    Returns:
        A `keras.Model` from a batch of images to float32 logits ``(batch, num_classes)``.

    Example:

    >>> model = build_preresnet((32, 32, 3), 10)
    >>> model.name
    'preresnet20'

    References:
        - He, Zhang, Ren & Sun, *Identity Mappings in Deep Residual Networks*, arXiv:1603.05027.
        - He, Zhang, Ren & Sun, *Deep Residual Learning for Image Recognition*, arXiv:1512.03385.
    """
    input_shape = _check_input_shape(input_shape)
    num_classes = _check_num_classes(num_classes)
    depth = _check_resnet_depth(depth)
    _check_image_shape(f"preresnet{depth}", input_shape, 1)
    blocks = (depth - 2) // 6

    inputs, x = _model_input(input_shape, normalization)
    x = _conv(x, _STAGE_FILTERS[0], 3, 1, "stem_conv")
    for stage, filters in enumerate(_STAGE_FILTERS, start=1):
        for block in range(1, blocks + 1):
            prefix = f"stage{stage}_block{block}"
            strides = 2 if stage > 1 and block == 1 else 1
            shortcut = _shortcut_a(x, filters, strides, f"{prefix}_shortcut")
            x = _relu(_bn(x, f"{prefix}_bn1"), f"{prefix}_relu1")
            x = _conv(x, filters, 3, strides, f"{prefix}_conv1")
            x = _relu(_bn(x, f"{prefix}_bn2"), f"{prefix}_relu2")
            x = _conv(x, filters, 3, 1, f"{prefix}_conv2")
            x = keras.layers.Add(name=f"{prefix}_add")([shortcut, x])
    x = _relu(_bn(x, "final_bn"), "final_relu")
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = _logits_layer(num_classes)(x)
    return keras.Model(inputs, outputs, name=name or f"preresnet{depth}")


def build_wide_resnet(
    input_shape: Sequence[int],
    num_classes: int,
    *,
    depth: int = 16,
    width: int = 8,
    dropout: float = 0.3,
    normalization: tuple[Any, Any] | None = None,
    name: str | None = None,
) -> keras.Model:
    """Builds the Wide ResNet WRN-``depth``-``width`` of Zagoruyko & Komodakis, outputting logits.

    ``conv3x3(16)``, three groups of ``n = (depth - 4) / 6`` pre-activation basic blocks with
    ``16 * width``, ``32 * width`` and ``64 * width`` filters (strides 1, 2, 2), each block
    ``BN-ReLU-conv3x3-BN-ReLU-Dropout-conv3x3``; where a block changes the shape its shortcut is
    a 1x1 convolution of the pre-activated input, as in the authors' code. Then ``BN-ReLU``,
    global average pooling and a float32 ``Dense(num_classes)``. Parameter counts (table 1 and 2
    of the paper, 10 classes): WRN-16-4 2.7M, WRN-40-4 8.9M, WRN-16-8 11.0M, WRN-28-10 36.5M.

    Args:
        input_shape: ``(height, width, channels)``, e.g. ``(32, 32, 3)``.
        num_classes: Number of classes (at least 2).
        depth: Number of weighted layers, ``6n + 4``. Defaults to ``16``.
        width: Widening factor ``k``. Defaults to ``8``.
        dropout: Dropout rate between the two convolutions of each block, in ``[0, 1)``.
            Defaults to ``0.3``.
        normalization: Optional per-channel ``(mean, std)`` pair. Defaults to `None`.
        name: Name of the model. Defaults to ``f"wrn_{depth}_{width}"``.

    Returns:
        A `keras.Model` from a batch of images to float32 logits ``(batch, num_classes)``.

    Raises:
        ValueError: If ``depth - 4`` is not a positive multiple of 6.

    Example:

    >>> model = build_wide_resnet((32, 32, 3), 10, depth=16, width=4, dropout=0.0)
    >>> model.name
    'wrn_16_4'

    References:
        - Zagoruyko & Komodakis, *Wide Residual Networks*, arXiv:1605.07146.
    """
    input_shape = _check_input_shape(input_shape)
    num_classes = _check_num_classes(num_classes)
    if _check_positive_int("depth", depth) < 10 or (depth - 4) % 6:
        raise _invalid_argument("depth", "an integer 6n + 4 with n >= 1 (e.g. 16, 28, 40)", depth)
    depth = int(depth)
    width = _check_positive_int("width", width)
    dropout = _check_rate("dropout", dropout)
    _check_image_shape("wrn", input_shape, 1)
    blocks = (depth - 4) // 6

    inputs, x = _model_input(input_shape, normalization)
    x = _conv(x, _STAGE_FILTERS[0], 3, 1, "stem_conv")
    for stage, base in enumerate(_STAGE_FILTERS, start=1):
        filters = base * width
        for block in range(1, blocks + 1):
            prefix = f"stage{stage}_block{block}"
            strides = 2 if stage > 1 and block == 1 else 1
            activated = _relu(_bn(x, f"{prefix}_bn1"), f"{prefix}_relu1")
            if strides == 1 and x.shape[-1] == filters:
                shortcut = x
            else:
                shortcut = _conv(activated, filters, 1, strides, f"{prefix}_shortcut")
            y = _conv(activated, filters, 3, strides, f"{prefix}_conv1")
            y = _relu(_bn(y, f"{prefix}_bn2"), f"{prefix}_relu2")
            if dropout > 0:
                y = keras.layers.Dropout(dropout, name=f"{prefix}_dropout")(y)
            y = _conv(y, filters, 3, 1, f"{prefix}_conv2")
            x = keras.layers.Add(name=f"{prefix}_add")([shortcut, y])
    x = _relu(_bn(x, "final_bn"), "final_relu")
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = _logits_layer(num_classes)(x)
    return keras.Model(inputs, outputs, name=name or f"wrn_{depth}_{width}")
