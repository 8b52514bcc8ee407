"""What datasets metaloss knows and where their files live on disk.

This module is pure metadata: it imports neither TensorFlow nor Keras nor NumPy, so that
``metaloss --help`` and ``metaloss datasets`` answer at once. It mirrors the cache layout of
``keras.utils.get_file`` (``$KERAS_HOME/datasets`` or ``~/.keras/datasets``) without importing
Keras.
"""

from __future__ import annotations

import dataclasses
import os
import types
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    import numpy as np

_KERAS_ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
_CIFAR_ORIGIN = "https://www.cs.toronto.edu/~kriz/"

#: The four IDX files of MNIST and Fashion-MNIST (same names for both).
IDX_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
#: Members of the extracted CIFAR-10 folder ``cifar-10-batches-py/``.
CIFAR10_MEMBERS = (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch")
#: Members of the extracted CIFAR-100 folder ``cifar-100-python/``.
CIFAR100_MEMBERS = ("train", "test")


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """Static description of one dataset.

    Args:
        name: The name accepted by `metaloss.data.load`.
        description: One line for `metaloss datasets`.
        num_classes: Number of classes.
        input_shape: Shape of one example (`(H, W, C)` for images, `(features,)` otherwise).
        offline: True when the data is generated or bundled, so no file is ever needed.
        files: Archive and folder names it can read (a trailing `/` marks a folder).
        urls: Where `keras.utils.get_file` downloads it from (empty when offline).
        default_augment: Whether `load(..., augment=None)` augments its training images.
        reference: The paper or source to cite.

    Example:

    >>> from metaloss.data.catalog import DATASETS
    >>> DATASETS["cifar10"].input_shape
    (32, 32, 3)
    """

    name: str
    description: str
    num_classes: int
    input_shape: tuple[int, ...]
    offline: bool
    files: tuple[str, ...] = ()
    urls: tuple[str, ...] = ()
    default_augment: bool = False
    reference: str = ""

    @property
    def is_image(self) -> bool:
        """Whether examples are `(H, W, C)` images."""
        return len(self.input_shape) == 3


_INFOS = (
    DatasetInfo(
        name="mnist1d",
        description="MNIST-1D: procedurally generated 1-D digits, 4000/1000 x 40, 10 classes",
        num_classes=10,
        input_shape=(40,),
        offline=True,
        reference="Greydanus, Scaling down deep learning, arXiv:2011.14439",
    ),
    DatasetInfo(
        name="digits",
        description="scikit-learn 8x8 handwritten digits (1797 images, fixed 20% test split)",
        num_classes=10,
        input_shape=(8, 8, 1),
        offline=True,
        reference="UCI optical recognition of handwritten digits (sklearn.datasets.load_digits)",
    ),
    DatasetInfo(
        name="spiral",
        description="3-class 2-D spiral toy problem of the dynamical-loss paper (300/300 points)",
        num_classes=3,
        input_shape=(2,),
        offline=True,
        reference=(
            "Ruiz-Garcia, Zhang, Schoenholz, Liu, Tilting the playing field: Dynamical loss "
            "functions for machine learning, arXiv:2102.03793"
        ),
    ),
    DatasetInfo(
        name="mnist",
        description="MNIST handwritten digits, 60000/10000 28x28 grey images, 10 classes",
        num_classes=10,
        input_shape=(28, 28, 1),
        offline=False,
        files=("mnist.npz", *IDX_FILES),
        urls=(f"{_KERAS_ORIGIN}mnist.npz",),
        reference="LeCun, Cortes, Burges, The MNIST database of handwritten digits",
    ),
    DatasetInfo(
        name="fashion_mnist",
        description="Fashion-MNIST clothing, 60000/10000 28x28 grey images, 10 classes",
        num_classes=10,
        input_shape=(28, 28, 1),
        offline=False,
        files=IDX_FILES,
        urls=tuple(f"{_KERAS_ORIGIN}{f}" for f in IDX_FILES),
        reference="Xiao, Rasul, Vollgraf, Fashion-MNIST, arXiv:1708.07747",
    ),
    DatasetInfo(
        name="cifar10",
        description="CIFAR-10, 50000/10000 32x32 colour images, 10 classes",
        num_classes=10,
        input_shape=(32, 32, 3),
        offline=False,
        files=("cifar-10-python.tar.gz", "cifar-10-batches-py/"),
        urls=(f"{_CIFAR_ORIGIN}cifar-10-python.tar.gz",),
        default_augment=True,
        reference="Krizhevsky, Learning multiple layers of features from tiny images, 2009",
    ),
    DatasetInfo(
        name="cifar100",
        description="CIFAR-100 (fine labels), 50000/10000 32x32 colour images, 100 classes",
        num_classes=100,
        input_shape=(32, 32, 3),
        offline=False,
        files=("cifar-100-python.tar.gz", "cifar-100-python/"),
        urls=(f"{_CIFAR_ORIGIN}cifar-100-python.tar.gz",),
        default_augment=True,
        reference="Krizhevsky, Learning multiple layers of features from tiny images, 2009",
    ),
)

#: Every dataset `metaloss.data.load` accepts, by name (read-only).
DATASETS: Mapping[str, DatasetInfo] = types.MappingProxyType({i.name: i for i in _INFOS})


class RawData(NamedTuple):
    """The two splits of a dataset as read from disk or generated, before any pipeline.

    Images are NHWC `uint8` in [0, 255] (or `float32` in [0, 1]); vector data is `float32`;
    labels are `int32` class ids.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


class Source(NamedTuple):
    """Where a dataset was found: `kind` is "npz", "idx", "cifar_tar" or "cifar_dir"."""

    kind: str
    path: Path


def check_name(name: str) -> DatasetInfo:
    """Returns the `DatasetInfo` of `name`, raising Keras's `ValueError` when unknown.

    Args:
        name: A dataset name.

    Returns:
        Its `DatasetInfo`.

    Example:

    >>> check_name("spiral").num_classes
    3
    """
    if not isinstance(name, str) or name not in DATASETS:
        raise ValueError(
            f"Invalid value for argument `name`. Expected one of {list(DATASETS)}. "
            f"Received: name={name!r}"
        )
    return DATASETS[name]


def keras_cache_dir() -> Path:
    """Returns the folder `keras.utils.get_file` caches datasets in.

    That is `$KERAS_HOME/datasets` when `KERAS_HOME` is set, else `~/.keras/datasets` (or
    `/tmp/.keras/datasets` when the home folder is not writable), read afresh on every call.

    Returns:
        The folder, which need not exist.

    Example:

    >>> keras_cache_dir().name
    'datasets'
    """
    home = os.environ.get("KERAS_HOME")
    if home is None:
        base = os.path.expanduser("~")
        if not os.access(base, os.W_OK):
            base = "/tmp"
        home = os.path.join(base, ".keras")
    return Path(os.path.expanduser(home)) / "datasets"


def search_dirs(data_dir: str | os.PathLike | None = None) -> list[Path]:
    """Returns the folders searched for dataset files, in order.

    Args:
        data_dir: A user folder searched first. Defaults to `None` (only the Keras cache).

    Returns:
        `[data_dir, keras_cache_dir()]`, plus `/tmp/.keras/datasets` where `get_file` falls
        back to when the Keras cache is not writable, without duplicates.

    Example:

    >>> search_dirs("/data")[0]
    PosixPath('/data')
    """
    dirs = [Path(os.path.expanduser(data_dir))] if data_dir is not None else []
    cache = keras_cache_dir()
    dirs.append(cache)
    if not os.access(cache.parent, os.W_OK):  # `get_file`'s own fallback.
        dirs.append(Path("/tmp/.keras/datasets"))
    unique: list[Path] = []
    for d in dirs:
        if d not in unique:
            unique.append(d)
    return unique


def _has_all(folder: Path, members: tuple[str, ...]) -> bool:
    return folder.is_dir() and all((folder / m).is_file() for m in members)


def _candidates(name: str, folder: Path, user_dir: bool) -> list[Source]:
    """Possible locations of `name` in one search folder, best first."""
    if name == "mnist":
        found = [Source("npz", folder / "mnist.npz"), Source("npz", folder / "mnist" / "mnist.npz")]
        found.append(Source("idx", folder / "mnist"))
        if user_dir:  # IDX names are shared with Fashion-MNIST: only a user folder is trusted.
            found.append(Source("idx", folder))
        return found
    if name == "fashion_mnist":
        found = [Source("idx", folder / "fashion-mnist"), Source("idx", folder / "fashion_mnist")]
        if user_dir:
            found.append(Source("idx", folder))
        return found
    if name in ("cifar10", "cifar100"):
        extracted = "cifar-10-batches-py" if name == "cifar10" else "cifar-100-python"
        archive = "cifar-10-python.tar.gz" if name == "cifar10" else "cifar-100-python.tar.gz"
        # Keras 3 caches `<extracted>-target_archive` and extracts into `<extracted>-target/`;
        # Keras 2 cached `<extracted>.tar.gz` and extracted into the cache folder itself.
        dirs = ("", f"{extracted}-target", extracted)
        found = [Source("cifar_dir", folder / d / extracted) for d in dirs]
        found.append(Source("cifar_dir", folder))
        tars = (
            archive,
            f"{extracted}-target_archive",
            f"{extracted}.tar.gz",
            f"{extracted}_archive",
        )
        found += [Source("cifar_tar", folder / t) for t in tars]
        return found
    return []


def _exists(source: Source, name: str) -> bool:
    if source.kind == "npz" or source.kind == "cifar_tar":
        return source.path.is_file()
    if source.kind == "idx":
        return _has_all(source.path, IDX_FILES)
    members = CIFAR10_MEMBERS if name == "cifar10" else CIFAR100_MEMBERS
    return _has_all(source.path, members)


def locate(name: str, data_dir: str | os.PathLike | None = None) -> Source | None:
    """Finds the files of a downloadable dataset in `data_dir` or the Keras cache.

    Args:
        name: A dataset name (see `DATASETS`).
        data_dir: A folder searched before the Keras cache. Defaults to `None`.

    Returns:
        The first `Source` found, or `None` (always `None` for offline datasets).

    Example:

    >>> locate("cifar10", "/nowhere") is None
    True
    """
    check_name(name)
    for i, folder in enumerate(search_dirs(data_dir)):
        user_dir = data_dir is not None and i == 0
        for source in _candidates(name, folder, user_dir):
            if _exists(source, name):
                return source
    return None


def is_available(name: str, data_dir: str | os.PathLike | None = None) -> bool:
    """Tells whether `load(name, download=False)` would find its data.

    Args:
        name: A dataset name (see `DATASETS`).
        data_dir: A folder searched before the Keras cache. Defaults to `None`.

    Returns:
        True for offline datasets, else True when the files are in `data_dir` or the Keras cache.

    Example:

    >>> is_available("mnist1d")
    True
    """
    info = check_name(name)
    return info.offline or locate(name, data_dir) is not None


def expected_files(name: str) -> str:
    """Describes, for error messages, which files would provide `name`.

    Args:
        name: A downloadable dataset name.

    Returns:
        One human-readable sentence fragment.

    Example:

    >>> expected_files("cifar100")
    'cifar-100-python.tar.gz, or its extracted folder cifar-100-python/ (train, test)'
    """
    idx = f"the four IDX files {', '.join(IDX_FILES)}"
    if name == "mnist":
        return f"mnist.npz, or {idx} (in a mnist/ subfolder, or directly in data_dir)"
    if name == "fashion_mnist":
        return f"{idx} (in a fashion-mnist/ subfolder, or directly in data_dir)"
    info = check_name(name)
    members = CIFAR10_MEMBERS if name == "cifar10" else CIFAR100_MEMBERS
    return f"{info.files[0]}, or its extracted folder {info.files[1]} ({', '.join(members)})"
