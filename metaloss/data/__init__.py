"""Datasets for loss-function metalearning, as seeded `tf.data` pipelines.

`load` returns a `Dataset` (train / validation / test pipelines plus normalisation statistics);
`DATASETS` and `is_available` describe what can be loaded. Those two come from
`metaloss.data.catalog`, which needs no TensorFlow; `load` and `Dataset` import it on first
access, so `import metaloss.data.catalog` (and `metaloss --help`) stays fast.

Example:

>>> from metaloss import data
>>> ds = data.load("spiral", batch_size=64)
>>> ds.num_classes, ds.input_shape
(3, (2,))
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from metaloss.data.catalog import DATASETS, is_available

if TYPE_CHECKING:
    from metaloss.data.datasets import Dataset, load

__all__ = ["DATASETS", "Dataset", "is_available", "load"]

_LAZY = {"Dataset": "metaloss.data.datasets", "load": "metaloss.data.datasets"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'metaloss.data' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
