"""Readers of the original MNIST / Fashion-MNIST / CIFAR formats, on tiny archives written here.

The writers below follow the published formats: IDX (http://yann.lecun.com/exdb/mnist/: two zero
bytes, a type byte 0x08 for unsigned bytes, the number of dimensions, big-endian uint32 sizes)
and the pickled CIFAR batches (https://www.cs.toronto.edu/~kriz/cifar.html: dicts with bytes keys,
`b"data"` an N x 3072 uint8 array of 1024 red, 1024 green, 1024 blue values per row).
"""

from __future__ import annotations

import gzip
import io
import os
import pickle
import socket
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest

from metaloss import data
from metaloss.data import archives, catalog

IMAGES_MAGIC = 0x00000803  # IDX: unsigned byte, 3 dimensions (N, rows, cols).
LABELS_MAGIC = 0x00000801  # IDX: unsigned byte, 1 dimension (N,).


def write_idx(path: Path, array: np.ndarray, magic: int) -> None:
    """Writes a gzipped IDX file: big-endian magic number, then big-endian uint32 sizes."""
    header = struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def write_mnist_idx(folder: Path, seed: int = 0, n_train: int = 30, n_test: int = 10) -> tuple:
    """Writes the four MNIST IDX files with random 28x28 images; returns the arrays."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    x_train = rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8)
    x_test = rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8)
    y_train = np.arange(n_train, dtype=np.uint8) % 10  # Every class, so stratification works.
    y_test = np.arange(n_test, dtype=np.uint8) % 10
    write_idx(folder / "train-images-idx3-ubyte.gz", x_train, IMAGES_MAGIC)
    write_idx(folder / "train-labels-idx1-ubyte.gz", y_train, LABELS_MAGIC)
    write_idx(folder / "t10k-images-idx3-ubyte.gz", x_test, IMAGES_MAGIC)
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", y_test, LABELS_MAGIC)
    return x_train, y_train, x_test, y_test


def _pickle_batch(rows: np.ndarray, labels: list[int], label_key: bytes) -> bytes:
    batch = {b"batch_label": b"tiny batch", label_key: labels, b"data": rows}
    batch[b"filenames"] = [f"img_{i}.png".encode() for i in range(len(labels))]
    if label_key == b"fine_labels":
        batch[b"coarse_labels"] = [label // 5 for label in labels]
    return pickle.dumps(batch, protocol=2)  # The originals are Python 2 protocol-2 pickles.


def _add(tar: tarfile.TarFile, name: str, payload: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    tar.addfile(info, io.BytesIO(payload))


def write_cifar(
    path: Path, name: str = "cifar10", per_batch: int = 10, extract_to: Path | None = None
) -> dict:
    """Writes a tiny `cifar-10-python.tar.gz` / `cifar-100-python.tar.gz` (or extracted folder).

    Returns the channel-first rows and labels of every member, by member name.
    """
    rng = np.random.default_rng(1 if name == "cifar10" else 2)
    num_classes = 10 if name == "cifar10" else 100
    folder = "cifar-10-batches-py" if name == "cifar10" else "cifar-100-python"
    members = catalog.CIFAR10_MEMBERS if name == "cifar10" else catalog.CIFAR100_MEMBERS
    label_key = b"labels" if name == "cifar10" else b"fine_labels"
    written = {}
    for i, member in enumerate(members):
        count = per_batch * (5 if name == "cifar100" and member == "train" else 1)
        rows = rng.integers(0, 256, (count, 3072), dtype=np.uint8)
        labels = [int((i + j) % num_classes) for j in range(count)]
        written[member] = (rows, labels)
    if extract_to is not None:
        (extract_to / folder).mkdir(parents=True, exist_ok=True)
        for member, (rows, labels) in written.items():
            (extract_to / folder / member).write_bytes(_pickle_batch(rows, labels, label_key))
        return written
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        _add(tar, f"{folder}/batches.meta", pickle.dumps({b"label_names": []}, protocol=2))
        for member, (rows, labels) in written.items():
            _add(tar, f"{folder}/{member}", _pickle_batch(rows, labels, label_key))
    return written


def nhwc(rows: np.ndarray) -> np.ndarray:
    """Channel-first rows -> NHWC, written out element by element as the format defines it."""
    out = np.zeros((len(rows), 32, 32, 3), np.uint8)
    for ch in range(3):
        for r in range(32):
            out[:, r, :, ch] = rows[:, ch * 1024 + r * 32 : ch * 1024 + r * 32 + 32]
    return out


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    """Points KERAS_HOME at an empty folder, so the real Keras cache is never consulted."""
    home = tmp_path / "keras_home"
    home.mkdir()
    monkeypatch.setenv("KERAS_HOME", str(home))
    return home


@pytest.fixture
def no_network(monkeypatch):
    """Makes any connection attempt fail the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("the network was touched")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(archives, "download", refuse)


def test_read_idx_header_and_values(tmp_path):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a.gz", array, IMAGES_MAGIC)
    raw = gzip.decompress((tmp_path / "a.gz").read_bytes())
    assert raw[:16] == bytes.fromhex("00000803 00000002 00000003 00000004")
    np.testing.assert_array_equal(archives.read_idx(tmp_path / "a.gz"), array)


def test_read_idx_rejects_bad_magic_and_truncation(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="not an IDX file"):
        archives.read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes(struct.pack(">II", LABELS_MAGIC, 5) + b"\x00\x01")
    with pytest.raises(ValueError, match="truncated"):
        archives.read_idx(tmp_path / "short")


def test_mnist_idx_round_trip_and_load(tmp_path, empty_cache, no_network):
    x_train, y_train, x_test, y_test = write_mnist_idx(tmp_path)
    raw = archives.read_mnist_idx(tmp_path)
    np.testing.assert_array_equal(raw.x_train, x_train[..., None])
    np.testing.assert_array_equal(raw.y_train, y_train)
    np.testing.assert_array_equal(raw.x_test, x_test[..., None])
    np.testing.assert_array_equal(raw.y_test, y_test)
    assert data.is_available("mnist", data_dir=tmp_path)
    ds = data.load("mnist", data_dir=tmp_path, download=False, validation_split=0.2)
    assert ds.input_shape == (28, 28, 1)
    assert ds.num_examples == {"train": 24, "validation": 6, "test": 10}  # 30 = 24 + 6; 10 test.
    x, y = ds.arrays("test")
    np.testing.assert_array_equal(x, x_test[..., None].astype(np.float32) / 255)
    np.testing.assert_array_equal(y, y_test)


def test_mnist_npz_is_preferred_and_exact(tmp_path, empty_cache, no_network):
    rng = np.random.default_rng(3)
    arrays = {
        "x_train": rng.integers(0, 256, (20, 28, 28), dtype=np.uint8),
        "y_train": np.arange(20, dtype=np.uint8) % 10,
        "x_test": rng.integers(0, 256, (5, 28, 28), dtype=np.uint8),
        "y_test": np.arange(5, dtype=np.uint8),
    }
    np.savez(tmp_path / "mnist.npz", **arrays)
    write_mnist_idx(tmp_path / "mnist", n_train=10)  # Found too, but mnist.npz comes first.
    assert catalog.locate("mnist", tmp_path).kind == "npz"
    ds = data.load("mnist", data_dir=tmp_path, download=False, validation_split=0)
    x, y = ds.arrays("train")
    np.testing.assert_array_equal(x, arrays["x_train"][..., None] / np.float32(255))
    np.testing.assert_array_equal(y, arrays["y_train"])
    assert ds.num_examples["test"] == 5


def test_fashion_mnist_in_keras_cache_layout(tmp_path, empty_cache, no_network):
    # keras.datasets.fashion_mnist caches its four files in datasets/fashion-mnist/.
    assert not data.is_available("fashion_mnist")
    _, _, x_test, y_test = write_mnist_idx(empty_cache / "datasets" / "fashion-mnist", seed=4)
    assert data.is_available("fashion_mnist")
    assert not data.is_available("mnist")  # The shared IDX names are not read from the cache.
    ds = data.load("fashion_mnist", download=False, label_mode="sparse", batch_size=4)
    x, y = ds.arrays("test")
    np.testing.assert_array_equal(x * 255, x_test[..., None])
    np.testing.assert_array_equal(y, y_test)


@pytest.mark.parametrize("extracted", [False, True])
def test_cifar10_pixels_labels_and_nhwc(tmp_path, empty_cache, no_network, extracted):
    archive = tmp_path / "cifar-10-python.tar.gz"
    written = write_cifar(archive, "cifar10", extract_to=tmp_path if extracted else None)
    source = catalog.locate("cifar10", tmp_path)
    assert source.kind == ("cifar_dir" if extracted else "cifar_tar")
    raw = archives.read_source("cifar10", source)
    train_rows = np.concatenate([written[f"data_batch_{i}"][0] for i in range(1, 6)])
    train_labels = [label for i in range(1, 6) for label in written[f"data_batch_{i}"][1]]
    np.testing.assert_array_equal(raw.x_train, nhwc(train_rows))
    np.testing.assert_array_equal(raw.y_train, train_labels)
    np.testing.assert_array_equal(raw.x_test, nhwc(written["test_batch"][0]))
    np.testing.assert_array_equal(raw.y_test, written["test_batch"][1])
    # Pixel (row 2, column 5, green) of the first test image is byte 1024 + 2 * 32 + 5.
    assert raw.x_test[0, 2, 5, 1] == written["test_batch"][0][0, 1024 + 69]
    ds = data.load("cifar10", data_dir=tmp_path, download=False, validation_split=0.2)
    assert ds.input_shape == (32, 32, 3)
    assert ds.num_examples == {"train": 40, "validation": 10, "test": 10}  # 5 x 10 train rows.


def test_cifar100_fine_labels(tmp_path, empty_cache, no_network):
    written = write_cifar(tmp_path / "cifar-100-python.tar.gz", "cifar100", per_batch=20)
    raw = archives.read_source("cifar100", catalog.locate("cifar100", tmp_path))
    np.testing.assert_array_equal(raw.x_train, nhwc(written["train"][0]))
    np.testing.assert_array_equal(raw.y_train, written["train"][1])
    np.testing.assert_array_equal(raw.x_test, nhwc(written["test"][0]))
    ds = data.load("cifar100", data_dir=tmp_path, download=False, validation_split=0)
    assert ds.num_classes == 100
    assert ds.num_examples == {"train": 100, "validation": 0, "test": 20}  # 5 x 20 train rows.


@pytest.mark.parametrize(
    "relative",
    [
        "datasets/cifar-10-batches-py-target/cifar-10-batches-py",  # Keras 3 `get_file` extract.
        "datasets/cifar-10-batches-py-target_archive",  # Keras 3's name for the download.
        "datasets/cifar-10-batches-py.tar.gz",  # Keras 2's name for the download.
    ],
)
def test_cifar10_found_in_keras_cache(empty_cache, no_network, relative):
    target = empty_cache / relative
    if relative.endswith("cifar-10-batches-py"):
        write_cifar(target, extract_to=target.parent)
    else:
        write_cifar(target)
    assert data.is_available("cifar10")
    assert data.load("cifar10", download=False).num_examples["test"] == 10


def test_missing_files_name_file_and_folders(tmp_path, empty_cache, no_network):
    assert not data.is_available("cifar10", data_dir=tmp_path)
    with pytest.raises(FileNotFoundError) as caught:
        data.load("cifar10", data_dir=tmp_path, download=False)
    message = str(caught.value)
    assert "'cifar10'" in message
    assert "cifar-10-python.tar.gz" in message
    assert str(tmp_path) in message
    assert str(empty_cache / "datasets") in message
    assert "data_dir" in message
    with pytest.raises(FileNotFoundError, match=r"train-images-idx3-ubyte\.gz"):
        data.load("fashion_mnist", data_dir=tmp_path, download=False)


def test_failed_download_is_a_file_not_found_error(tmp_path, empty_cache, monkeypatch):
    def unreachable(address, timeout=None, **kwargs):
        raise OSError("network is unreachable")

    # The reachability probe fails, so Keras's get_file is never reached.
    monkeypatch.setattr(socket, "create_connection", unreachable)
    with pytest.raises(OSError, match="network is unreachable"):
        archives.download("mnist")
    with pytest.raises(FileNotFoundError, match=r"download failed.*network is unreachable"):
        data.load("mnist", data_dir=tmp_path, download=True)


def test_malicious_pickle_is_refused(tmp_path):
    class Exploit:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    payload = io.BytesIO(pickle.dumps({b"data": Exploit(), b"labels": []}, protocol=2))
    with pytest.raises(pickle.UnpicklingError, match="Refusing"):
        archives.read_cifar_batch(payload)


def test_channel_statistics_of_uint8_images_are_exact(tmp_path, empty_cache, no_network):
    write_cifar(tmp_path / "cifar-10-python.tar.gz")
    ds = data.load("cifar10", data_dir=tmp_path, download=False)
    x = ds.arrays("train")[0].astype(np.float64)  # float64: float32 sums drift by ~1e-5.
    np.testing.assert_allclose(ds.channel_mean, x.mean(axis=(0, 1, 2)), rtol=1e-6)
    np.testing.assert_allclose(ds.channel_std, x.std(axis=(0, 1, 2)), rtol=1e-6)
    assert ds.channel_mean.dtype == np.float32 and ds.channel_mean.shape == (3,)
