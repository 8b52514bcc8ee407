"""Readers for the original on-disk formats of MNIST, Fashion-MNIST, CIFAR-10 and CIFAR-100.

The files are read directly (not through `keras.datasets.*.load_data`), from `data_dir`, the
Keras cache, or, when allowed, a fresh download through `keras.utils.get_file` into that cache.
Only NumPy is needed to read; Keras is imported only to download.
"""

from __future__ import annotations

import functools
import gzip
import os
import pickle
import socket
import tarfile
import threading
import urllib.parse
import urllib.request
from pathlib import Path
from typing import BinaryIO

import numpy as np

from metaloss.data import catalog
from metaloss.data.catalog import RawData, Source

#: Seconds allowed to reach the download host, and per blocking socket call while downloading.
DOWNLOAD_TIMEOUT = 10.0

# Same origins and SHA-256 hashes as `keras.datasets` (keras/src/datasets/*.py).
_FILE_HASHES = {
    "mnist": "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1",
    "cifar10": "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
    "cifar100": "85cd44d02ba6437773c5bbd22e183051d648de2e7d6b014e1ef29b855ba677a7",
}
# Big-endian element types of the IDX format, by the third byte of the magic number.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
# The only globals a CIFAR pickle needs: numpy array reconstruction (both numpy 1 and 2
# spellings) and `_codecs.encode`, which Python 3 uses for `bytes` at pickle protocol 2.
_PICKLE_GLOBALS = frozenset(
    {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("_codecs", "encode"),
    }
)


class _RestrictedUnpickler(pickle.Unpickler):
    """Refuses every global but array reconstruction, so a tampered file cannot run code."""

    def find_class(self, module: str, name: str):
        if (module, name) in _PICKLE_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"Refusing to load `{module}.{name}` from a CIFAR batch.")


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Reads one IDX file (the format of the MNIST and Fashion-MNIST distributions).

    The header is two zero bytes, a type byte (0x08 = unsigned byte, ...), the number of
    dimensions, then each dimension as a big-endian `uint32`; the data follow, big-endian.

    Args:
        path: The file, gzip-compressed when its name ends in `.gz`.

    Returns:
        The array, in native byte order.

    Example:

    >>> labels = read_idx("train-labels-idx1-ubyte.gz")  # doctest: +SKIP
    >>> labels.shape, labels.dtype  # doctest: +SKIP
    ((60000,), dtype('uint8'))
    """
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise ValueError(f"{path} is not an IDX file (magic number {data[:4].hex()}).")
    ndim = data[3]
    header = 4 + 4 * ndim
    shape = tuple(int(d) for d in np.frombuffer(data[4:header], ">u4"))
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    count = int(np.prod(shape))
    if len(shape) != ndim or len(data) - header != count * dtype.itemsize:
        raise ValueError(f"{path} is truncated: header says {shape}, file has {len(data)} bytes.")
    array = np.frombuffer(data, dtype, count, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="))


def _images_labels(images: np.ndarray, labels: np.ndarray, what: str) -> tuple:
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(f"{what}: images {images.shape} do not match labels {labels.shape}.")
    return images.astype(np.uint8)[..., None], labels.astype(np.int32)


def read_mnist_idx(folder: str | os.PathLike) -> RawData:
    """Reads MNIST or Fashion-MNIST from its four gzipped IDX files.

    Args:
        folder: The folder holding `train-images-idx3-ubyte.gz`, `train-labels-idx1-ubyte.gz`,
            `t10k-images-idx3-ubyte.gz` and `t10k-labels-idx1-ubyte.gz`.

    Returns:
        `RawData` with `(N, 28, 28, 1)` uint8 images and int32 labels.

    Example:

    >>> data = read_mnist_idx("~/.keras/datasets/fashion-mnist")  # doctest: +SKIP
    """
    folder = Path(os.path.expanduser(folder))
    tr_x, tr_y, te_x, te_y = (read_idx(folder / f) for f in catalog.IDX_FILES)
    x_train, y_train = _images_labels(tr_x, tr_y, f"{folder} (train)")
    x_test, y_test = _images_labels(te_x, te_y, f"{folder} (t10k)")
    return RawData(x_train, y_train, x_test, y_test)


def read_mnist_npz(path: str | os.PathLike) -> RawData:
    """Reads Keras's `mnist.npz` (arrays `x_train`, `y_train`, `x_test`, `y_test`).

    Args:
        path: The `.npz` file.

    Returns:
        `RawData` with `(N, 28, 28, 1)` uint8 images and int32 labels.

    Example:

    >>> data = read_mnist_npz("~/.keras/datasets/mnist.npz")  # doctest: +SKIP
    """
    with np.load(os.path.expanduser(path), allow_pickle=False) as f:
        x_train, y_train = _images_labels(f["x_train"], f["y_train"], f"{path} (train)")
        x_test, y_test = _images_labels(f["x_test"], f["y_test"], f"{path} (test)")
    return RawData(x_train, y_train, x_test, y_test)


def read_cifar_batch(fileobj: BinaryIO, label_key: bytes = b"labels") -> tuple:
    """Reads one pickled CIFAR batch and turns its channel-first rows into NHWC images.

    Each row of `b"data"` holds 1024 red, then 1024 green, then 1024 blue values of a 32x32
    image in row-major order.

    Args:
        fileobj: An open binary file (or tar member).
        label_key: `b"labels"` for CIFAR-10, `b"fine_labels"` or `b"coarse_labels"` for
            CIFAR-100. Defaults to `b"labels"`.

    Returns:
        `(images, labels)`: `(N, 32, 32, 3)` uint8 and `(N,)` int32.

    Example:

    >>> with open("cifar-10-batches-py/test_batch", "rb") as f:  # doctest: +SKIP
    ...     x, y = read_cifar_batch(f)
    """
    batch = _RestrictedUnpickler(fileobj, encoding="bytes").load()
    batch = {k.encode() if isinstance(k, str) else k: v for k, v in batch.items()}
    data = np.asarray(batch[b"data"], dtype=np.uint8)
    labels = np.asarray(batch[label_key], dtype=np.int32)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(data) != len(labels):
        raise ValueError(f"Not a CIFAR batch: data {data.shape}, labels {labels.shape}.")
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy(), labels


def read_cifar(name: str, source: str | os.PathLike) -> RawData:
    """Reads CIFAR-10 or CIFAR-100 (fine labels) from its `.tar.gz` or its extracted folder.

    Args:
        name: `"cifar10"` or `"cifar100"`.
        source: `cifar-10-python.tar.gz` / `cifar-100-python.tar.gz` (any tar file name), or
            the extracted `cifar-10-batches-py/` / `cifar-100-python/` folder.

    Returns:
        `RawData` with `(N, 32, 32, 3)` uint8 images and int32 labels.

    Example:

    >>> data = read_cifar("cifar10", "cifar-10-python.tar.gz")  # doctest: +SKIP
    """
    members = catalog.CIFAR10_MEMBERS if name == "cifar10" else catalog.CIFAR100_MEMBERS
    label_key = b"labels" if name == "cifar10" else b"fine_labels"
    source = Path(os.path.expanduser(source))
    batches: dict[str, tuple] = {}
    if source.is_dir():
        for member in members:
            with open(source / member, "rb") as f:
                batches[member] = read_cifar_batch(f, label_key)
    else:
        with tarfile.open(source, "r:*") as tar:
            for info in tar:  # In archive order: a gzip stream is cheap to read forwards only.
                base = info.name.rsplit("/", 1)[-1]
                if info.isfile() and base in members and base not in batches:
                    batches[base] = read_cifar_batch(tar.extractfile(info), label_key)
    missing = [m for m in members if m not in batches]
    if missing:
        raise ValueError(f"{source} lacks the {name} batches {missing}.")
    train = [batches[m] for m in members[:-1]]
    x_test, y_test = batches[members[-1]]
    x_train = np.concatenate([x for x, _ in train])
    y_train = np.concatenate([y for _, y in train])
    return RawData(x_train, y_train, x_test, y_test)


def read_source(name: str, source: Source) -> RawData:
    """Reads a dataset from a `Source` found by `catalog.locate`.

    Args:
        name: The dataset name.
        source: Where its files are.

    Returns:
        The `RawData`, with read-only arrays (they are memoized per file).

    Example:

    >>> read_source("mnist", catalog.locate("mnist"))  # doctest: +SKIP
    """
    path = source.path.resolve()
    return _read_cached(name, source.kind, path, path.stat().st_mtime_ns)


@functools.lru_cache(maxsize=2)
def _read_cached(name: str, kind: str, path: Path, mtime_ns: int) -> RawData:
    if kind == "npz":
        data = read_mnist_npz(path)
    elif kind == "idx":
        data = read_mnist_idx(path)
    else:
        data = read_cifar(name, path)
    for array in data:
        array.flags.writeable = False
    return data


def _probe(url: str, timeout: float) -> str | None:
    """Returns why `url`'s host (or its proxy) cannot be reached within `timeout`, or None."""
    parts = urllib.parse.urlsplit(url)
    host, port = parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
    proxy = urllib.request.getproxies().get(parts.scheme)
    if proxy and not urllib.request.proxy_bypass(host):
        proxy_parts = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        host, port = proxy_parts.hostname, proxy_parts.port or 80
    outcome: dict[str, object] = {}

    def connect() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            outcome["ok"] = True
        except OSError as error:
            outcome["error"] = error

    # A thread bounds the DNS lookup too, which the socket timeout does not cover.
    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(timeout)
    if outcome.get("ok"):
        return None
    return f"cannot reach {host}:{port}: {outcome.get('error', f'no answer in {timeout:g} s')}"


def download(name: str, timeout: float = DOWNLOAD_TIMEOUT) -> Source:
    """Downloads a dataset into the Keras cache exactly as `keras.datasets` would.

    Args:
        name: `"mnist"`, `"fashion_mnist"`, `"cifar10"` or `"cifar100"`.
        timeout: Seconds to reach the host, and per blocking socket operation.
            Defaults to `DOWNLOAD_TIMEOUT`.

    Returns:
        The `Source` of the downloaded files.

    Raises:
        OSError: When the host cannot be reached or the transfer fails.

    Example:

    >>> download("mnist")  # doctest: +SKIP
    Source(kind='npz', path=PosixPath('/root/.keras/datasets/mnist.npz'))
    """
    info = catalog.check_name(name)
    if info.offline:
        raise ValueError(f"Dataset {name!r} is generated offline; there is nothing to download.")
    reason = _probe(info.urls[0], timeout)
    if reason is not None:
        raise OSError(reason)
    from keras.utils import get_file  # Imported here: reading never needs Keras.

    cache_dir = str(catalog.keras_cache_dir().parent)
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout)
    try:
        if name == "mnist":
            path = get_file(
                "mnist.npz", info.urls[0], file_hash=_FILE_HASHES[name], cache_dir=cache_dir
            )
            return Source("npz", Path(path))
        if name == "fashion_mnist":
            paths = [
                get_file(
                    f,
                    url,
                    cache_subdir=os.path.join("datasets", "fashion-mnist"),
                    cache_dir=cache_dir,
                )
                for f, url in zip(catalog.IDX_FILES, info.urls, strict=True)
            ]
            return Source("idx", Path(paths[0]).parent)
        extracted = "cifar-10-batches-py" if name == "cifar10" else "cifar-100-python"
        path = get_file(
            f"{extracted}-target",
            info.urls[0],
            extract=True,
            file_hash=_FILE_HASHES[name],
            cache_dir=cache_dir,
        )
        return Source("cifar_dir", Path(path) / extracted)
    finally:
        socket.setdefaulttimeout(previous)


def not_found_error(
    name: str, data_dir: str | os.PathLike | None, reason: str
) -> FileNotFoundError:
    """Builds the error for a dataset whose files are missing: what, where, and how to fix it.

    Args:
        name: The dataset name.
        data_dir: The user folder searched, or None.
        reason: Why nothing was downloaded.

    Returns:
        The `FileNotFoundError` (not raised).

    Example:

    >>> raise not_found_error("cifar10", None, "download=False")  # doctest: +SKIP
    """
    info = catalog.DATASETS[name]
    searched = ", ".join(str(d) for d in catalog.search_dirs(data_dir))
    return FileNotFoundError(
        f"Dataset {name!r} was not found and {reason}. Expected {catalog.expected_files(name)}. "
        f"Searched: {searched}. To provide it, download {' '.join(info.urls)} and put the "
        f"file(s) in the folder given as --data-dir / `data_dir`, or in the Keras cache "
        f"{catalog.keras_cache_dir()}; or call load(..., download=True) with network access."
    )


def load_archive(
    name: str, data_dir: str | os.PathLike | None = None, download_missing: bool = True
) -> RawData:
    """Finds (or downloads) and reads a file-backed dataset.

    Args:
        name: `"mnist"`, `"fashion_mnist"`, `"cifar10"` or `"cifar100"`.
        data_dir: A folder searched before the Keras cache. Defaults to `None`.
        download_missing: Whether to download into the Keras cache when nothing is found; when
            False the network is never touched. Defaults to `True`.

    Returns:
        The `RawData` (read-only arrays).

    Raises:
        FileNotFoundError: At once when the files are missing and cannot be downloaded.

    Example:

    >>> data = load_archive("cifar10", "/data", download_missing=False)  # doctest: +SKIP
    """
    source = catalog.locate(name, data_dir)
    if source is None:
        if not download_missing:
            raise not_found_error(name, data_dir, "download=False")
        try:
            source = download(name)
        except Exception as error:
            raise not_found_error(name, data_dir, f"the download failed ({error})") from error
    return read_source(name, source)
