"""The loss zoo: metalearned and dynamical losses for ``model.compile(loss=...)``.

Every loss is a pair, as in Keras: a function of ``(y_true, y_pred)`` returning per-sample
values, and a registered ``keras.losses.Loss`` class (``"metaloss>ClassName"``) that saves inside
a ``.keras`` model. :func:`get` resolves every way of naming a loss that metaloss accepts.
"""

from __future__ import annotations

import inspect
import json
import os
from collections.abc import Callable
from pathlib import Path

import keras

from metaloss.losses._base import invalid_value, loss_step_variable
from metaloss.losses._spec import parse_spec
from metaloss.losses.baikal import Baikal, baikal
from metaloss.losses.cyclic import CyclicClassEmphasis, cyclic_class_emphasis, cyclic_weights
from metaloss.losses.learned import LearnedLoss, learned_loss, smooth_leaky_relu
from metaloss.losses.poly import PolyLoss, poly_loss
from metaloss.losses.probability_mse import ProbabilityMSE, probability_mse
from metaloss.losses.symbolic import SymbolicLoss, symbolic_loss
from metaloss.losses.taylor_glo import REFERENCE_CODE_EXAMPLE, TaylorGLO, taylor_glo

__all__ = [
    "REFERENCE_CODE_EXAMPLE",
    "Baikal",
    "CyclicClassEmphasis",
    "LearnedLoss",
    "PolyLoss",
    "ProbabilityMSE",
    "SymbolicLoss",
    "TaylorGLO",
    "baikal",
    "catalog",
    "cyclic_class_emphasis",
    "cyclic_weights",
    "deserialize",
    "get",
    "learned_loss",
    "loss_step_variable",
    "poly_loss",
    "probability_mse",
    "save",
    "serialize",
    "smooth_leaky_relu",
    "symbolic_loss",
    "taylor_glo",
]


def _taylor_glo_reference(
    from_logits: bool = False,
    reduction: str | None = "sum_over_batch_size",
    name: str = "taylor_glo",
    dtype=None,
) -> TaylorGLO:
    return TaylorGLO.from_reference_code(
        REFERENCE_CODE_EXAMPLE, from_logits=from_logits, reduction=reduction, name=name, dtype=dtype
    )


# name -> (factory, one-line description). The factories take keyword arguments only.
_ZOO: dict[str, tuple[Callable[..., keras.losses.Loss], str]] = {
    "cross_entropy": (
        keras.losses.CategoricalCrossentropy,
        "Keras's categorical cross-entropy (one-hot labels), the usual baseline.",
    ),
    "sparse_cross_entropy": (
        keras.losses.SparseCategoricalCrossentropy,
        "Keras's sparse categorical cross-entropy (integer labels).",
    ),
    "mse": (
        keras.losses.MeanSquaredError,
        "Keras's mean squared error between one-hot labels and the raw model outputs.",
    ),
    "probability_mse": (
        ProbabilityMSE,
        "Mean squared error between one-hot labels and softmax probabilities, the MSE baseline "
        "of the GLO/TaylorGLO papers.",
    ),
    "poly_loss": (
        PolyLoss,
        "Poly-1, cross-entropy + ε(1 - p_t), epsilon=1 by default (arXiv 2204.12511).",
    ),
    "baikal": (Baikal, "Baikal, -(1/n) Σ (log y - x/y), found by GLO (arXiv 1905.11528)."),
    "taylor_glo": (
        TaylorGLO,
        "TaylorGLO 3rd-order Taylor polynomial loss, needs theta=[θ0..θ7] (arXiv 2002.00059).",
    ),
    "taylor_glo_reference": (
        _taylor_glo_reference,
        "The TaylorGLO loss whose θ ships as the example of the reference code.",
    ),
    "cyclic_class_emphasis": (
        CyclicClassEmphasis,
        "Dynamical loss emphasising one class per period (arXiv 2102.03793); needs "
        "num_classes, period, amplitude.",
    ),
    "learned_loss": (
        LearnedLoss,
        "AdaLFL/ML3 learned loss network (2×40, smooth leaky ReLU); a fresh one is random: "
        "learn it with `metaloss online` (arXiv 2301.13247).",
    ),
    "symbolic": (
        SymbolicLoss,
        "Symbolic loss, a per-class expression of y and f such as neg(mul(y, log(f))) "
        "(EvoMAL, arXiv 2209.08907); needs expression='...'.",
    ),
}
_ALIASES = {
    "ce": "cross_entropy",
    "crossentropy": "cross_entropy",
    "categorical_crossentropy": "cross_entropy",
    "sparse_categorical_crossentropy": "sparse_cross_entropy",
    "mean_squared_error": "mse",
    "poly1": "poly_loss",
    "poly": "poly_loss",
    "taylorglo": "taylor_glo",
    "cyclic": "cyclic_class_emphasis",
    "learned": "learned_loss",
    "adalfl": "learned_loss",
}


def catalog() -> dict[str, str]:
    """The zoo's names (aliases excluded) with one-line descriptions."""
    return {name: description for name, (_, description) in _ZOO.items()}


def serialize(loss: keras.losses.Loss) -> dict:
    """Keras's serialized form of a loss, ``{"class_name": "metaloss>Baikal", "config": ...}``."""
    return keras.saving.serialize_keras_object(loss)


def deserialize(config: dict, **defaults) -> keras.losses.Loss:
    """Inverse of :func:`serialize`; ``defaults`` fill constructor arguments the config lacks."""
    if not isinstance(config, dict) or "class_name" not in config:
        raise invalid_value("config", "a serialized loss dict with a 'class_name' key", config)
    config = dict(config)
    cls = keras.saving.get_registered_object(config.get("registered_name") or "")
    if cls is not None and defaults:
        accepted = _accepted(cls, defaults)
        config["config"] = {**accepted, **config.get("config", {})}
    return keras.saving.deserialize_keras_object(config)


def save(loss: keras.losses.Loss, path: str | os.PathLike) -> Path:
    """Writes ``serialize(loss)`` as JSON (atomically) so that ``get(path)`` reloads it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(serialize(loss), indent=2) + "\n")
    partial.replace(path)
    return path


def _accepted(factory: Callable, defaults: dict) -> dict:
    """The subset of ``defaults`` that ``factory``'s signature accepts."""
    parameters = inspect.signature(factory).parameters
    return {k: v for k, v in defaults.items() if k in parameters}


def _build(name: str, factory: Callable, kwargs: dict, defaults: dict) -> keras.losses.Loss:
    try:
        return factory(**{**_accepted(factory, defaults), **kwargs})
    except TypeError as error:
        raise invalid_value("loss", f"arguments that {name!r} accepts ({error})", kwargs) from None


def _load_json(path: Path, defaults: dict) -> keras.losses.Loss:
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        expected = f"a JSON file holding a serialized loss ({error})"
        raise invalid_value("loss", expected, str(path)) from None
    return deserialize(config, **defaults)


def get(identifier, **defaults) -> keras.losses.Loss | Callable:
    """Resolves any way metaloss accepts of naming a loss to a Keras loss.

    Accepts a loss object or callable (returned as is), a zoo name (``"baikal"``), a name with
    arguments (``"baikal:from_logits=true"``, ``"taylor_glo:theta=[...]"``), Keras's registered
    name (``"metaloss>Baikal"``), a serialized config dict, or the path of a JSON file holding one.
    ``"cross_entropy"`` and ``"mse"`` resolve to Keras's own losses.

    Args:
        identifier: the loss, as above.
        **defaults: constructor arguments used when the loss accepts them and the identifier does
            not set them, e.g. ``from_logits=True`` for models that output logits.

    Returns:
        A ``keras.losses.Loss`` (or the callable given).

    Example:

    >>> get("baikal:from_logits=true").from_logits
    True
    """
    if isinstance(identifier, keras.losses.Loss) or (
        callable(identifier) and not isinstance(identifier, str)
    ):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier, **defaults)
    if isinstance(identifier, os.PathLike) or (
        isinstance(identifier, str) and identifier.endswith(".json")
    ):
        path = Path(identifier)
        if not path.is_file():
            raise invalid_value("loss", "an existing JSON file", str(identifier))
        return _load_json(path, defaults)
    if not isinstance(identifier, str) or not identifier.strip():
        raise invalid_value("loss", "a loss name, spec, config dict, JSON path or Loss", identifier)
    name, kwargs = parse_spec(identifier)
    registered = keras.saving.get_registered_object(name) if ">" in name else None
    if registered is not None:
        return _build(name, registered, kwargs, defaults)
    key = _ALIASES.get(name.lower(), name.lower())
    if key not in _ZOO:
        known = sorted([*_ZOO, *_ALIASES])
        raise invalid_value("loss", f"one of {known}, 'metaloss>ClassName' or a JSON file", name)
    return _build(key, _ZOO[key][0], kwargs, defaults)
