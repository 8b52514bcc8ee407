"""Crop / flip / cutout augmentation, alone and inside the CIFAR training pipeline."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from metaloss import data
from metaloss.data import augment

from .test_archives import write_cifar

SEED = tf.constant([7, 11], tf.int64)


def images(n: int = 16, size: int = 12, channels: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, size, size, channels), dtype=np.float32)


def crops_and_flips(image: np.ndarray, padding: int) -> list[np.ndarray]:
    """Every output `random_crop_flip` may give for one image: each offset, flipped or not."""
    h, w = image.shape[:2]
    padded = np.pad(image, ((padding, padding), (padding, padding), (0, 0)))
    out = []
    for dy in range(2 * padding + 1):
        for dx in range(2 * padding + 1):
            crop = padded[dy : dy + h, dx : dx + w]
            out += [crop, crop[:, ::-1]]
    return out


def test_crop_flip_is_a_padded_crop_or_its_mirror():
    x = images()
    out = augment.random_crop_flip(x, SEED).numpy()
    assert out.shape == x.shape and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 1
    for original, augmented in zip(x, out, strict=True):
        options = crops_and_flips(original, augment.CROP_PADDING)
        assert any(np.array_equal(augmented, o) for o in options)
    # An image is left as it was only for the centre offset without a flip (p = 1/162).
    assert sum(not np.array_equal(a, b) for a, b in zip(x, out, strict=True)) >= 12


def test_flip_alone_mirrors_about_half():
    x = images(n=32)
    out = augment.random_crop_flip(x, SEED, padding=0).numpy()
    flipped = [np.array_equal(o, i[:, ::-1]) for o, i in zip(out, x, strict=True)]
    kept = [np.array_equal(o, i) for o, i in zip(out, x, strict=True)]
    assert all(f or k for f, k in zip(flipped, kept, strict=True))
    assert 0 < sum(flipped) < 32


def test_augmentation_is_deterministic_per_seed():
    x = images()
    a = augment.augment_images(x, SEED, cutout_size=4).numpy()
    b = augment.augment_images(x, SEED, cutout_size=4).numpy()
    c = augment.augment_images(x, tf.constant([7, 12], tf.int64), cutout_size=4).numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_cutout_zeroes_one_square_clipped_at_borders():
    size = 4
    out = augment.cutout(np.ones((64, 12, 12, 1), np.float32), size, SEED).numpy()[..., 0]
    full_squares = 0
    for image in out:
        zero_rows = np.flatnonzero((image == 0).any(axis=1))
        zero_cols = np.flatnonzero((image == 0).any(axis=0))
        # One axis-aligned rectangle: the rows x cols block is all zero and nothing else is.
        assert (image == 0).sum() == len(zero_rows) * len(zero_cols) > 0
        assert np.ptp(zero_rows) + 1 == len(zero_rows) <= size
        assert np.ptp(zero_cols) + 1 == len(zero_cols) <= size
        full_squares += len(zero_rows) == len(zero_cols) == size
    assert full_squares > 0  # A centre at least size/2 from the borders gives the whole square.
    np.testing.assert_array_equal(augment.cutout(np.ones((2, 5, 5, 1)), 0, SEED), 1)


def test_single_image_and_bad_rank():
    x = images(n=1)[0]
    assert augment.augment_images(x, SEED, cutout_size=3).shape == x.shape
    with pytest.raises(ValueError, match="Expected images"):
        augment.random_crop_flip(np.zeros((4, 4)), SEED)


@pytest.fixture
def cifar_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))  # Never the real cache.
    write_cifar(tmp_path / "cifar-10-python.tar.gz", per_batch=10)
    return tmp_path


def test_cifar_training_is_augmented_and_deterministic(cifar_dir):
    kwargs = {"data_dir": cifar_dir, "download": False, "batch_size": 16, "cutout": 8}
    a, b = data.load("cifar10", **kwargs), data.load("cifar10", **kwargs)
    epochs = []
    for _ in range(2):  # Two epochs: same augmented batches from two separate `load` calls.
        got_a, got_b = [x.numpy() for x, _ in a.train], [x.numpy() for x, _ in b.train]
        for xa, xb in zip(got_a, got_b, strict=True):
            np.testing.assert_array_equal(xa, xb)
        epochs.append(np.concatenate(got_a))
    assert epochs[0].shape == (45, 32, 32, 3)  # 50 rows, validation_split 0.1 holds out 5.
    assert epochs[0].min() >= 0 and epochs[0].max() <= 1
    assert not np.array_equal(epochs[0], epochs[1])
    plain = {row.tobytes() for row in a.arrays("train")[0]}
    assert not any(row.tobytes() in plain for row in epochs[0])  # Every image was changed.
    other = data.load("cifar10", **{**kwargs, "seed": 1})
    assert not np.array_equal(np.concatenate([x.numpy() for x, _ in other.train]), epochs[0])


def test_eval_splits_are_never_augmented(cifar_dir):
    ds = data.load("cifar10", data_dir=cifar_dir, download=False, batch_size=4, cutout=16)
    for split, pipeline in (("validation", ds.validation), ("test", ds.test)):
        x = np.concatenate([x.numpy() for x, _ in pipeline])
        np.testing.assert_array_equal(x, ds.arrays(split)[0])


def test_augment_false_leaves_training_images_alone(cifar_dir):
    ds = data.load("cifar10", data_dir=cifar_dir, download=False, augment=False)
    x = np.concatenate([x.numpy() for x, _ in ds.train])
    reference = ds.arrays("train")[0]
    assert {r.tobytes() for r in x} == {r.tobytes() for r in reference}
    assert len(x) == len(reference)
