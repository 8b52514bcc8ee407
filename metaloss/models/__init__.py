"""Model zoo: the classifiers of the loss-metalearning papers, as fresh Keras functional models.

Every model outputs float32 LOGITS (no softmax) of shape ``(batch, num_classes)``. Build one by name
with :func:`get`; :data:`MODELS` lists the names with a one-line description each. Importing this
package is cheap: Keras (and TensorFlow) load only when a model is first built.

The architectures live in the submodules :mod:`~metaloss.models.mlp` (the multilayer perceptron),
:mod:`~metaloss.models.small_cnn` (the MNIST-1D and digit convnets), :mod:`~metaloss.models.cifar`
(All-CNN-C and the CIFAR AlexNet) and :mod:`~metaloss.models.resnet` (ResNet, pre-activation
ResNet and Wide ResNet). Their ``build_*`` functions are also reachable from this package.
"""

from __future__ import annotations

import importlib
import inspect
import numbers
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import keras

__all__ = ["MODELS", "get"]

# name -> (submodule, builder, fixed keyword arguments, one-line description).
_REGISTRY: dict[str, tuple[str, str, dict[str, Any], str]] = {
    "mlp": (
        "mlp",
        "build_mlp",
        {},
        "Multilayer perceptron on the flattened input (any input shape).",
    ),
    "cnn1d": (
        "small_cnn",
        "build_cnn1d",
        {},
        "Greydanus's MNIST-1D convnet: three strided Conv1D layers of 25 channels.",
    ),
    "cnn": (
        "small_cnn",
        "build_cnn",
        {},
        "Small 2-D convnet (two 3x3 convs, max-pool, dense) for digits, MNIST and CIFAR.",
    ),
    "resnet20": (
        "resnet",
        "build_resnet",
        {"depth": 20},
        "He et al.'s CIFAR ResNet-20 with parameter-free shortcuts (0.27M parameters).",
    ),
    "resnet32": (
        "resnet",
        "build_resnet",
        {"depth": 32},
        "He et al.'s CIFAR ResNet-32 with parameter-free shortcuts (0.46M parameters).",
    ),
    "resnet56": (
        "resnet",
        "build_resnet",
        {"depth": 56},
        "He et al.'s CIFAR ResNet-56 with parameter-free shortcuts (0.85M parameters).",
    ),
    "preresnet20": (
        "resnet",
        "build_preresnet",
        {"depth": 20},
        "Pre-activation CIFAR ResNet-20 (He et al., identity mappings).",
    ),
    "wrn": (
        "resnet",
        "build_wide_resnet",
        {},
        "Wide ResNet WRN-depth-width (default WRN-16-8, 11.0M parameters).",
    ),
    "allcnn_c": (
        "cifar",
        "build_allcnn_c",
        {},
        "Springenberg et al.'s All-CNN-C: convolutions only, strided instead of pooling (1.37M).",
    ),
    "alexnet": (
        "cifar",
        "build_alexnet",
        {},
        "The CIFAR AlexNet of the pytorch-classification repository (2.47M parameters).",
    ),
}

MODELS: dict[str, str] = {name: entry[3] for name, entry in _REGISTRY.items()}
"""Model name -> one-line description, for listings; the names :func:`get` accepts."""

# Public builder name -> submodule, for lazy attribute access (``metaloss.models.build_mlp``).
_BUILDERS = {entry[1]: entry[0] for entry in _REGISTRY.values()}

# Arguments every builder takes that `get` passes itself (or that would clash with its own).
_RESERVED = ("input_shape", "num_classes", "normalization", "name")


def get(
    name: str,
    input_shape: Sequence[int],
    num_classes: int,
    *,
    normalization: tuple[Any, Any] | None = None,
    **kwargs: Any,
) -> keras.Model:
    """Builds a fresh, uncompiled model of the zoo by name.

    Args:
        name: One of the keys of :data:`MODELS`, e.g. ``"resnet20"``.
        input_shape: Shape of one example, without the batch axis, e.g. ``(32, 32, 3)`` for
            CIFAR images or ``(40,)`` for MNIST-1D vectors.
        num_classes: Number of classes (at least 2): the width of the logits.
        normalization: Optional ``(mean, std)`` pair of arrays broadcastable to the last input
            axis (per channel for images, per feature for vectors). When given the model starts
            with a ``keras.layers.Normalization`` layer computing ``(x - mean) / std``, so it is
            fed raw inputs (e.g. pixels in ``[0, 1]``). Defaults to `None` (no normalization).
        **kwargs: Hyperparameters of the architecture's builder, e.g. ``hidden=(256,)`` for
            ``"mlp"`` or ``depth=28, width=10`` for ``"wrn"``.

    Returns:
        A `keras.Model` mapping a batch of inputs to float32 logits of shape
        ``(batch, num_classes)``.

    Raises:
        ValueError: If ``name`` is not a known model, a keyword argument is not a hyperparameter
            of that model, or an argument has an invalid value.

    Example:

    >>> model = metaloss.models.get("resnet20", (32, 32, 3), 10)
    >>> model.name
    'resnet20'
    >>> model = metaloss.models.get("mlp", (40,), 10, hidden=(100,))
    >>> model.output_shape
    (None, 10)

    References:
        See the docstring of each architecture's ``build_*`` function.
    """
    if not isinstance(name, str) or name not in _REGISTRY:
        raise _invalid_argument("name", f"one of {list(_REGISTRY)}", name)
    input_shape = _check_input_shape(input_shape)
    _check_num_classes(num_classes)
    module_name, builder_name, fixed, _ = _REGISTRY[name]
    builder = _builder(module_name, builder_name)
    allowed = [
        parameter.name
        for parameter in inspect.signature(builder).parameters.values()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
        and parameter.name not in _RESERVED
        and parameter.name not in fixed
    ]
    unknown = [key for key in kwargs if key not in allowed]
    if unknown:
        names = ", ".join(f"`{key}`" for key in unknown)
        raise ValueError(
            f"Invalid keyword argument(s) for model '{name}': {names}. "
            f"Expected a subset of {allowed}. Received: {kwargs}"
        )
    return builder(input_shape, num_classes, normalization=normalization, **fixed, **kwargs)


def __getattr__(attribute: str) -> Any:
    if attribute in _BUILDERS:
        return _builder(_BUILDERS[attribute], attribute)
    raise AttributeError(f"module 'metaloss.models' has no attribute {attribute!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_BUILDERS])


def _builder(module_name: str, builder_name: str) -> Any:
    return getattr(importlib.import_module(f"metaloss.models.{module_name}"), builder_name)


# --- Helpers shared by the builders (keras is imported inside them, never at import time). ---


def _invalid_argument(argument: str, expected: str, value: Any) -> ValueError:
    """Returns (not raises) a `ValueError` worded as Keras words an invalid argument."""
    return ValueError(
        f"Invalid value for argument `{argument}`. Expected {expected}. "
        f"Received: {argument}={value!r}"
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_input_shape(input_shape: Any) -> tuple[int, ...]:
    """Validates an input shape (a non-empty sequence of positive ints); returns it as a tuple."""
    shape = _as_tuple(input_shape)
    if not shape or not all(_is_int(size) and size > 0 for size in shape):
        raise _invalid_argument("input_shape", "a tuple of positive integers", input_shape)
    return tuple(int(size) for size in shape)


def _as_tuple(value: Any) -> tuple[Any, ...] | None:
    """``tuple(value)`` for a list, tuple or iterable; `None` for strings, mappings, scalars."""
    if isinstance(value, (str, bytes, Mapping)):
        return None
    try:
        return tuple(value)
    except TypeError:
        return None


def _check_num_classes(num_classes: Any) -> int:
    """Validates a number of classes (an int of at least 2) and returns it."""
    if not _is_int(num_classes) or num_classes < 2:
        raise _invalid_argument("num_classes", "an integer >= 2", num_classes)
    return int(num_classes)


def _check_positive_int(argument: str, value: Any) -> int:
    """Validates a positive int hyperparameter and returns it."""
    if not _is_int(value) or value < 1:
        raise _invalid_argument(argument, "a positive integer", value)
    return int(value)


def _check_positive_ints(argument: str, value: Any) -> tuple[int, ...]:
    """Validates a (possibly empty) sequence of positive ints and returns it as a tuple."""
    sizes = _as_tuple(value)
    if sizes is None or not all(_is_int(size) and size > 0 for size in sizes):
        raise _invalid_argument(argument, "a tuple of positive integers", value)
    return tuple(int(size) for size in sizes)


def _check_rate(argument: str, value: Any) -> float:
    """Validates a dropout rate in ``[0, 1)`` and returns it as a float."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not 0 <= value < 1:
        raise _invalid_argument(argument, "a dropout rate in [0, 1)", value)
    return float(value)


def _check_image_shape(model: str, input_shape: tuple[int, ...], min_size: int) -> None:
    """Checks that ``input_shape`` is ``(height, width, channels)`` with both sides >= min_size."""
    if len(input_shape) != 3 or min(input_shape[:2]) < min_size:
        raise _invalid_argument(
            "input_shape",
            f"an image shape (height, width, channels) with height and width >= {min_size} "
            f"for model '{model}'",
            input_shape,
        )


def _model_input(
    input_shape: tuple[int, ...], normalization: tuple[Any, Any] | None
) -> tuple[Any, Any]:
    """Creates the model's `keras.Input` and, if asked, its `Normalization` layer.

    Args:
        input_shape: Validated shape of one example.
        normalization: `None`, or a ``(mean, std)`` pair broadcastable to the last input axis.

    Returns:
        ``(inputs, x)``: the `keras.Input` tensor and the tensor the body starts from (the
        normalized inputs, or the inputs themselves).
    """
    import keras

    inputs = keras.Input(shape=input_shape, name="inputs")
    if normalization is None:
        return inputs, inputs
    mean, std = _check_normalization(normalization, input_shape[-1])
    layer = keras.layers.Normalization(
        axis=-1, mean=mean.tolist(), variance=(std**2).tolist(), name="normalization"
    )
    return inputs, layer(inputs)


def _check_normalization(normalization: Any, channels: int) -> tuple[Any, Any]:
    import numpy as np

    expected = f"a (mean, std) pair of arrays broadcastable to the last input axis ({channels},)"
    pair = _as_tuple(normalization)
    if pair is None or len(pair) != 2:
        raise _invalid_argument("normalization", expected, normalization)
    arrays = []
    for value in pair:
        try:
            array = np.asarray(value, dtype="float64")
        except (TypeError, ValueError):
            raise _invalid_argument("normalization", expected, normalization) from None
        leading_ones = all(size == 1 for size in array.shape[:-1])
        if array.size not in (1, channels) or not leading_ones or not np.isfinite(array).all():
            raise _invalid_argument("normalization", expected, normalization)
        arrays.append(np.broadcast_to(array.reshape(-1), (channels,)).astype("float32"))
    mean, std = arrays
    if not (std > 0).all():
        raise _invalid_argument("normalization", "a (mean, std) pair with std > 0", normalization)
    return mean, std


def _logits_layer(num_classes: int, name: str = "logits") -> Any:
    """The classifier head: a float32 `Dense(num_classes)` without activation.

    float32 keeps mixed-precision logits stable; under a float64 dtype policy (as in the
    dynamical-loss paper's float64 runs) the head is float64 like the rest of the network.
    """
    import keras

    float64 = keras.config.dtype_policy().compute_dtype == "float64"
    return keras.layers.Dense(num_classes, dtype="float64" if float64 else "float32", name=name)
