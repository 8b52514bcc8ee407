"""metaloss: loss-function metalearning for Keras 3.

Importing ``metaloss`` is cheap: subpackages (``metaloss.losses``, ``metaloss.data``,
``metaloss.models``, ``metaloss.training``, ...) load on first attribute access, so that the
``metaloss`` command answers ``--help`` without importing TensorFlow. The loss zoo still
registers itself with Keras's serializer the moment Keras is imported (or at once, if Keras
already is), so a ``.keras`` model compiled with a metaloss loss loads in a fresh process after
nothing more than ``import metaloss``.
"""

from __future__ import annotations

import importlib
from typing import Any

from metaloss._keras_hook import register_zoo_when_keras_loads

__version__ = "0.1.0"

_SUBPACKAGES = ("analysis", "cli", "data", "losses", "models", "search", "training")

register_zoo_when_keras_loads()


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        return importlib.import_module(f"metaloss.{name}")
    raise AttributeError(f"module 'metaloss' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_SUBPACKAGES])
