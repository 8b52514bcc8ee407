"""Training batches as a function of (seed, epoch): passes, other processes, cut epochs."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest

from metaloss import data
from metaloss.data import epochs

from ..conftest import run_python

ROOT = pathlib.Path(__file__).resolve().parents[2]


def labels(dataset) -> np.ndarray:
    """Class ids of every batch, in order: `(examples,)`."""
    return np.concatenate([np.argmax(y.numpy(), axis=-1) for _, y in dataset])


def inputs(dataset) -> list[np.ndarray]:
    return [x.numpy() for x, _ in dataset]


def test_the_ith_pass_of_train_is_epoch_i():
    ds = data.load("digits", batch_size=128, seed=2)
    passes = [inputs(ds.train) for _ in range(3)]
    for epoch, seen in enumerate(passes):
        for got, want in zip(seen, inputs(ds.train_epoch(epoch)), strict=True):
            np.testing.assert_array_equal(got, want)
    assert not np.array_equal(passes[0][0], passes[1][0])  # reshuffled
    assert ds.train.for_epoch is ds.train_epoch


def test_an_epoch_holds_every_training_example_once():
    ds = data.load("spiral", batch_size=64, seed=1)
    x_train, y_train = ds.arrays("train")
    x = np.concatenate(inputs(ds.train_epoch(7)))
    pairs = sorted(zip(map(bytes, x), labels(ds.train_epoch(7)), strict=True))
    assert pairs == sorted(zip(map(bytes, x_train), y_train, strict=True))
    assert not np.array_equal(x, x_train)  # shuffled


@pytest.mark.slow
def test_an_epoch_is_the_same_in_a_fresh_process_whatever_was_iterated_before():
    code = """
import json, numpy as np
from metaloss import data
ds = data.load("digits", batch_size=64, seed=5, augment=True, cutout=3)
for _ in ds.train:   # iterating other epochs first changes nothing
    pass
x, y = next(iter(ds.train_epoch(4)))
print(json.dumps({"x": x.numpy().ravel()[:200].tolist(), "y": y.numpy().argmax(-1).tolist()}))
"""
    there = json.loads(run_python(code, cwd=ROOT).strip().splitlines()[-1])
    ds = data.load("digits", batch_size=64, seed=5, augment=True, cutout=3)
    x, y = next(iter(ds.train_epoch(4)))
    np.testing.assert_array_equal(np.asarray(there["x"], np.float32), x.numpy().ravel()[:200])
    assert there["y"] == y.numpy().argmax(-1).tolist()


def test_augmentation_is_drawn_afresh_each_epoch_and_fixed_by_the_epoch():
    ds = data.load("digits", batch_size=1000, seed=0, augment=True)
    x_train, _ = ds.arrays("train")
    first, again, second = (inputs(ds.train_epoch(e))[0] for e in (1, 1, 2))
    np.testing.assert_array_equal(first, again)
    plain = {row.tobytes() for row in x_train.reshape(len(x_train), -1)}
    shifted = sum(row.tobytes() not in plain for row in first.reshape(len(first), -1))
    assert shifted > len(first) // 2  # most images are cropped or flipped
    assert not np.array_equal(np.sort(first, axis=None), np.sort(second, axis=None))


def test_steps_per_epoch_cuts_the_passes_laid_end_to_end():
    ds = data.load("spiral", batch_size=100, seed=3)  # 270 training points: 3 batches a pass
    stream = np.concatenate([labels(ds.train_epoch(p)) for p in range(4)])
    batch_sizes = [100, 100, 70] * 4
    starts = np.concatenate([[0], np.cumsum(batch_sizes)])
    cut = epochs.steps_per_epoch(ds.train_epoch, 5)
    for epoch in range(2):  # epoch e = batches 5e .. 5e + 4 of the stream
        want = stream[starts[5 * epoch] : starts[5 * epoch + 5]]
        np.testing.assert_array_equal(labels(cut(epoch)), want)


def test_one_batch_ahead_pairs_each_batch_with_the_next():
    ds = data.load("spiral", batch_size=100, seed=3)
    this, following = inputs(ds.train_epoch(2)), inputs(epochs.one_batch_ahead(ds.train_epoch)(2))
    assert len(this) == len(following) == 3
    np.testing.assert_array_equal(following[0], this[1])
    np.testing.assert_array_equal(following[1], this[2])
    np.testing.assert_array_equal(following[2], inputs(ds.train_epoch(3))[0])


def test_sources_and_their_errors():
    ds = data.load("spiral", batch_size=100)
    assert epochs.source_of(ds.train) is ds.train_epoch
    assert epochs.source_of(ds.train_epoch) is ds.train_epoch
    assert epochs.source_of(ds.test)(3) is ds.test  # a plain dataset: the same every epoch
    assert epochs.batches_per_epoch(ds.train_epoch) == 3
    with pytest.raises(ValueError, match="Invalid value for argument `train`"):
        epochs.source_of([1, 2])
    with pytest.raises(ValueError, match="Invalid value for argument `epoch`"):
        ds.train_epoch(-1)
    with pytest.raises(ValueError, match="unknown or infinite"):
        epochs.steps_per_epoch(lambda epoch: ds.test.repeat(), 4)
