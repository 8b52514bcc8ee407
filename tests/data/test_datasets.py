"""`load` on the offline datasets: splits, determinism, labels, argument checks, the catalog."""

from __future__ import annotations

import random
import subprocess
import sys

import numpy as np
import pytest

from metaloss import data
from metaloss.data import offline


def batches(dataset) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(x.numpy(), y.numpy()) for x, y in dataset]


def stacked(dataset) -> tuple[np.ndarray, np.ndarray]:
    got = batches(dataset)
    return np.concatenate([x for x, _ in got]), np.concatenate([y for _, y in got])


def rows(x: np.ndarray) -> set[bytes]:
    return {row.tobytes() for row in x.reshape(len(x), -1)}


def test_unknown_name_lists_known_names():
    with pytest.raises(ValueError) as caught:
        data.load("foo")
    assert str(caught.value) == (
        "Invalid value for argument `name`. Expected one of ['mnist1d', 'digits', 'spiral', "
        "'mnist', 'fashion_mnist', 'cifar10', 'cifar100']. Received: name='foo'"
    )


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"validation_split": 1.0}, "validation_split"),
        ({"validation_split": -0.1}, "validation_split"),
        ({"subset_fraction": 0.0}, "subset_fraction"),
        ({"subset_fraction": 1.5}, "subset_fraction"),
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": 2.5}, "batch_size"),
        ({"cutout": -1}, "cutout"),
        ({"cutout": 4}, "cutout"),  # The spiral is not an image.
        ({"augment": True}, "augment"),  # Likewise.
        ({"label_mode": "categorical"}, "label_mode"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, argument):
    with pytest.raises(ValueError, match=f"Invalid value for argument `{argument}`"):
        data.load("spiral", **kwargs)


def test_subset_fraction_message_in_keras_form():
    with pytest.raises(ValueError) as caught:
        data.load("spiral", subset_fraction=1.5)
    assert str(caught.value) == (
        "Invalid value for argument `subset_fraction`. Expected a number in (0, 1]. "
        "Received: subset_fraction=1.5"
    )


def test_spiral_geometry():
    x, y = offline.make_spiral()
    assert x.shape == (300, 2) and x.dtype == np.float32
    np.testing.assert_array_equal(np.bincount(y), [100, 100, 100])  # 3 classes x 100 points.
    radius = np.linalg.norm(x.astype(np.float64), axis=1)
    assert radius.min() >= 0 and radius.max() <= 1 + 1e-6
    # |r (sin t, cos t)| = r = linspace(0, 1, 100) for every class, whatever the noise.
    np.testing.assert_allclose(radius[y == 1], np.linspace(0, 1, 100), atol=1e-6)
    raw = offline.load_spiral()
    assert raw.x_test.shape == (300, 2)
    assert not np.array_equal(raw.x_train, raw.x_test)  # An independent draw.
    np.testing.assert_array_equal(raw.x_train, offline.load_spiral().x_train)  # A fixed one.


def test_mnist1d_shapes_and_global_rng_untouched():
    offline.load_mnist1d.cache_clear()
    np.random.seed(123)  # noqa: NPY002 - the state `make_dataset` must not disturb.
    random.seed(456)
    before = np.random.get_state()[1].copy(), random.getstate()  # noqa: NPY002
    raw = offline.load_mnist1d()
    after = np.random.get_state()[1], random.getstate()  # noqa: NPY002
    np.testing.assert_array_equal(before[0], after[0])
    assert before[1] == after[1]
    # MNIST-1D defaults: 5000 samples, train_split 0.8 -> 4000 / 1000, length 40, 10 classes.
    assert raw.x_train.shape == (4000, 40) and raw.x_test.shape == (1000, 40)
    assert sorted(np.unique(raw.y_train)) == list(range(10))
    ds = data.load("mnist1d", validation_split=0.1)
    assert ds.num_examples == {"train": 3600, "validation": 400, "test": 1000}
    assert ds.input_shape == (40,) and ds.num_classes == 10
    assert ds.channel_mean.shape == (40,) and ds.channel_std.shape == (40,)


def test_digits_fixed_test_split_in_unit_range():
    a, b = data.load("digits", seed=0), data.load("digits", seed=1)
    # 1797 images; round(0.2 * 1797) = 359 in the fixed test split, whatever the seed.
    assert a.num_examples["test"] == 359
    np.testing.assert_array_equal(a.arrays("test")[0], b.arrays("test")[0])
    x, _ = a.arrays("train")
    assert x.shape[1:] == (8, 8, 1) and x.min() == 0 and x.max() == 1  # 0..16 scaled by 1/16.
    assert not np.array_equal(a.arrays("validation")[1], b.arrays("validation")[1])


def test_stratified_validation_and_subset_sizes():
    ds = data.load("spiral", validation_split=0.1, subset_fraction=0.5, label_mode="sparse")
    # 300 points: 30 validation (10 per class), 270 left, half of them kept: 135 (45 per class).
    assert ds.num_examples == {"train": 135, "validation": 30, "test": 300}
    np.testing.assert_array_equal(np.bincount(ds.arrays("validation")[1]), [10, 10, 10])
    np.testing.assert_array_equal(np.bincount(ds.arrays("train")[1]), [45, 45, 45])
    assert not rows(ds.arrays("train")[0]) & rows(ds.arrays("validation")[0])


def test_stratified_split_with_unbalanced_classes():
    y = np.repeat([0, 1, 2], [50, 30, 20])
    rest, split = offline.stratified_split(y, 1 / 12, seed=0)
    # round(100 / 12) = 8, allotted 50:30:20 -> quotas 4.17, 2.5, 1.67 -> 4, 2 (+0), 1 (+1).
    assert len(split) == 8 and len(rest) == 92
    np.testing.assert_array_equal(np.bincount(y[split]), [4, 2, 2])
    np.testing.assert_array_equal(np.sort(np.concatenate([rest, split])), np.arange(100))


def test_no_validation_split():
    ds = data.load("spiral", validation_split=0)
    assert ds.validation is None and ds.num_examples["validation"] == 0
    with pytest.raises(ValueError, match="no validation split"):
        ds.arrays("validation")
    with pytest.raises(ValueError, match="Invalid value for argument `split`"):
        ds.arrays("valid")


def test_same_seed_same_batches_for_two_epochs():
    a = data.load("spiral", seed=3, batch_size=64)
    b = data.load("spiral", seed=3, batch_size=64)
    for _ in range(2):
        for (xa, ya), (xb, yb) in zip(batches(a.train), batches(b.train), strict=True):
            np.testing.assert_array_equal(xa, xb)
            np.testing.assert_array_equal(ya, yb)


def test_train_reshuffles_each_epoch_and_seeds_differ():
    ds = data.load("spiral", seed=0, batch_size=300)
    first, second = batches(ds.train)[0][0], batches(ds.train)[0][0]
    assert not np.array_equal(first, second)
    assert rows(first) == rows(second) == rows(ds.arrays("train")[0])  # Same examples, once each.
    other = data.load("spiral", seed=1, batch_size=300)
    assert not np.array_equal(first, batches(other.train)[0][0])
    assert rows(ds.arrays("validation")[0]) != rows(other.arrays("validation")[0])


def test_eval_splits_are_ordered_and_keep_the_remainder():
    ds = data.load("spiral", batch_size=64)
    sizes = [len(y) for _, y in batches(ds.test)]
    assert sizes == [64, 64, 64, 64, 44]  # 300 test points = 4 x 64 + 44.
    x, y = stacked(ds.test)
    x_ref, y_ref = ds.arrays("test")
    np.testing.assert_array_equal(x, x_ref)
    np.testing.assert_array_equal(np.argmax(y, axis=1), y_ref)
    x_val, _ = stacked(ds.validation)
    np.testing.assert_array_equal(x_val, ds.arrays("validation")[0])


def test_one_hot_and_sparse_labels():
    one_hot = data.load("digits", batch_size=32)
    sparse = data.load("digits", batch_size=32, label_mode="sparse")
    (x1, y1), (x2, y2) = batches(one_hot.test)[0], batches(sparse.test)[0]
    assert y1.shape == (32, 10) and y1.dtype == np.float32
    assert y2.shape == (32,) and y2.dtype == np.int32
    assert x1.dtype == np.float32 == x2.dtype
    np.testing.assert_array_equal(y1.sum(axis=1), 1)
    np.testing.assert_array_equal(np.argmax(y1, axis=1), y2)


def test_catalog_metadata_and_availability():
    assert list(data.DATASETS) == [
        "mnist1d",
        "digits",
        "spiral",
        "mnist",
        "fashion_mnist",
        "cifar10",
        "cifar100",
    ]
    assert data.DATASETS["cifar10"].files[0] == "cifar-10-python.tar.gz"
    assert data.DATASETS["cifar100"].num_classes == 100
    assert all(data.is_available(n) for n, i in data.DATASETS.items() if i.offline)
    assert data.DATASETS["mnist"].urls[0].endswith("mnist.npz")
    with pytest.raises(ValueError, match="Invalid value for argument `name`"):
        data.is_available("imagenet")


def test_catalog_imports_without_tensorflow():
    code = "import metaloss.data.catalog, sys; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
