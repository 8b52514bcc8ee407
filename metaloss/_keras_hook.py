"""Register the loss zoo with Keras's serializer as soon as Keras is imported.

Keras resolves ``"metaloss>Baikal"`` in a saved model through its table of registered objects,
which ``metaloss.losses`` fills when it is imported. Importing it eagerly from
``metaloss/__init__.py`` would import TensorFlow for every ``metaloss --help``; instead a one-shot
import hook (a :class:`importlib.abc.MetaPathFinder`) waits for ``keras`` to finish loading and then
imports ``metaloss.losses``.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
from types import ModuleType

_ZOO_MODULE = "metaloss.losses"


def _import_zoo() -> None:
    importlib.import_module(_ZOO_MODULE)


class _LoaderThenZoo(importlib.abc.Loader):
    """Delegates to Keras's own loader, then imports the zoo once Keras is complete."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        module.__spec__.loader = self._loader
        module.__loader__ = self._loader
        _import_zoo()

    def __getattr__(self, name: str):
        return getattr(self._loader, name)


class _KerasWatcher(importlib.abc.MetaPathFinder):
    """Finds nothing itself; wraps the real spec of ``keras`` the first time it is imported."""

    def find_spec(self, fullname, path, target=None):
        if fullname != "keras":
            return None
        _uninstall()
        spec = importlib.util.find_spec("keras")
        if spec is None or spec.loader is None:
            return spec
        spec.loader = _LoaderThenZoo(spec.loader)
        return spec


_WATCHER = _KerasWatcher()


def _uninstall() -> None:
    if _WATCHER in sys.meta_path:
        sys.meta_path.remove(_WATCHER)


def register_zoo_when_keras_loads() -> None:
    """Import ``metaloss.losses`` now if Keras is loaded, else right after Keras loads."""
    if "keras" in sys.modules:
        _import_zoo()
    elif _WATCHER not in sys.meta_path:
        sys.meta_path.insert(0, _WATCHER)
