"""`load`: a dataset as seeded, batched `tf.data` pipelines plus its normalisation statistics."""

from __future__ import annotations

import dataclasses
import functools
import numbers
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import tensorflow as tf

from metaloss.data import archives, catalog, offline
from metaloss.data import augment as augmentation
from metaloss.data.catalog import RawData
from metaloss.data.epochs import EpochBatches

SPLITS = ("train", "validation", "test")
LABEL_MODES = ("one_hot", "sparse")


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """A loaded dataset: batched `tf.data` pipelines of `(x, y)` and what a model needs to know.

    Images stay in pixel space [0, 1] in every pipeline; `channel_mean` and `channel_std`
    (computed on the training split) are meant for a `Normalization` layer inside the model, so
    that attacks and augmentation work on pixels.

    Attributes:
        name: The dataset name.
        train: Training batches, reshuffled (and, if enabled, re-augmented) every epoch: its
            `i`-th pass is `train_epoch(i)`.
        train_epoch: `train_epoch(epoch)` gives the training batches of one epoch, a function
            of `(seed, epoch)` alone (see `metaloss.data.epochs`), so that a resumed run sees
            what the uninterrupted one saw. `Trainer.fit(train)` uses it by itself.
        validation: Validation batches in a fixed order, or `None` when `validation_split=0`.
        test: Test batches in a fixed order.
        num_classes: Number of classes.
        input_shape: Shape of one example, e.g. `(32, 32, 3)` or `(40,)`.
        channel_mean: float32 mean per channel (images) or per feature (vectors).
        channel_std: float32 standard deviation, same shape (a constant input reports 1).
        num_examples: Examples per split: `{"train": ..., "validation": ..., "test": ...}`.

    Example:

    >>> ds = load("spiral", batch_size=32)
    >>> x, y = next(iter(ds.train))
    >>> x.shape, y.shape
    (TensorShape([32, 2]), TensorShape([32, 3]))
    """

    name: str
    train: tf.data.Dataset
    train_epoch: EpochBatches
    validation: tf.data.Dataset | None
    test: tf.data.Dataset
    num_classes: int
    input_shape: tuple[int, ...]
    channel_mean: np.ndarray
    channel_std: np.ndarray
    num_examples: Mapping[str, int]
    _splits: Mapping[str, tuple[np.ndarray, np.ndarray]] = dataclasses.field(repr=False)

    def arrays(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """Returns one split un-augmented and un-batched, in its stored (unshuffled) order.

        Args:
            split: `"train"`, `"validation"` or `"test"`.

        Returns:
            `(x, y)`: float32 inputs (images in [0, 1]) and int32 class ids, as fresh arrays.

        Example:

        >>> x, y = load("digits").arrays("test")
        >>> x.shape, y.shape
        ((359, 8, 8, 1), (359,))
        """
        if split not in SPLITS:
            raise ValueError(
                f"Invalid value for argument `split`. Expected one of {list(SPLITS)}. "
                f"Received: split={split!r}"
            )
        if split not in self._splits:
            raise ValueError(
                f"Dataset {self.name!r} has no validation split: it was loaded with "
                "validation_split=0."
            )
        x, y = self._splits[split]
        return _to_float(x), np.array(y, dtype=np.int32)


def _to_float(x: np.ndarray) -> np.ndarray:
    if x.dtype == np.uint8:
        return x.astype(np.float32) / np.float32(255.0)
    return np.array(x, dtype=np.float32)


def _invalid(argument: str, expected: str, value: Any) -> ValueError:
    return ValueError(
        f"Invalid value for argument `{argument}`. Expected {expected}. "
        f"Received: {argument}={value!r}"
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_arguments(
    info: catalog.DatasetInfo,
    validation_split: float,
    subset_fraction: float,
    seed: int,
    batch_size: int,
    augment_: bool | None,
    cutout: int,
    label_mode: str,
) -> None:
    if not (_is_real(validation_split) and 0 <= validation_split < 1):
        raise _invalid("validation_split", "a number in [0, 1)", validation_split)
    if not (_is_real(subset_fraction) and 0 < subset_fraction <= 1):
        raise _invalid("subset_fraction", "a number in (0, 1]", subset_fraction)
    if not (_is_int(seed) and seed >= 0):
        raise _invalid("seed", "an integer >= 0", seed)
    if not (_is_int(batch_size) and batch_size >= 1):
        raise _invalid("batch_size", "an integer >= 1", batch_size)
    if not (_is_int(cutout) and cutout >= 0):
        raise _invalid("cutout", "an integer >= 0", cutout)
    if label_mode not in LABEL_MODES:
        raise _invalid("label_mode", f"one of {list(LABEL_MODES)}", label_mode)
    if augment_ not in (None, True, False):
        raise _invalid("augment", "None, True or False", augment_)
    if not info.is_image and augment_:
        raise _invalid("augment", f"None or False for the non-image dataset {info.name!r}", True)
    if not info.is_image and cutout:
        raise _invalid("cutout", f"0 for the non-image dataset {info.name!r}", cutout)


@functools.cache
def _offline_raw_data(name: str) -> RawData:
    """Offline datasets are built once per process (their arrays are read-only)."""
    return offline.OFFLINE_LOADERS[name]()


def _raw_data(name: str, data_dir: str | os.PathLike | None, download: bool) -> RawData:
    if name in offline.OFFLINE_LOADERS:
        return _offline_raw_data(name)
    return archives.load_archive(name, data_dir, download_missing=download)


def channel_statistics(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation per channel (NHWC images) or per feature (vectors).

    uint8 images are measured in [0, 1] pixel units, exactly and cheaply from a histogram of
    each channel. A zero standard deviation is reported as 1.

    Args:
        x: `(N, H, W, C)` images (uint8 or float) or `(N, F)` features.

    Returns:
        `(mean, std)`: float32 arrays of shape `(C,)` or `(F,)`.

    Example:

    >>> mean, std = channel_statistics(np.zeros((2, 4, 4, 3), np.uint8))
    >>> mean.tolist(), std.tolist()
    ([0.0, 0.0, 0.0], [1.0, 1.0, 1.0])
    """
    channels = x.shape[-1]
    if x.dtype == np.uint8:
        # One histogram of 256 levels per channel, counted a million pixels at a time.
        flat = x.reshape(-1, channels)
        offsets = np.arange(channels, dtype=np.int32) * 256
        counts = np.zeros(256 * channels, np.int64)
        for start in range(0, len(flat), 1 << 20):
            chunk = flat[start : start + (1 << 20)] + offsets
            counts += np.bincount(chunk.ravel(), minlength=256 * channels)
        p = counts.reshape(channels, 256) / max(len(flat), 1)
        levels = np.arange(256, dtype=np.float64) / 255.0
        mean = p @ levels
        std = np.sqrt(np.sum(p * (levels[None, :] - mean[:, None]) ** 2, axis=1))
    else:
        flat = np.asarray(x, np.float64).reshape(-1, channels)
        mean, std = flat.mean(axis=0), flat.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return mean.astype(np.float32), std.astype(np.float32)


def _prepare_batches(
    *, num_classes: int, label_mode: str, is_uint8: bool, crop_flip: bool = False, cutout: int = 0
):
    """``(x, y, seed) -> (x, y)`` for a batch: pixels in [0, 1], augmentation, label encoding."""
    augmenting = crop_flip or cutout > 0

    def prepare(images: tf.Tensor, labels: tf.Tensor, seed: tf.Tensor | None = None):
        images = tf.cast(images, tf.float32)
        if is_uint8:  # Divided, not multiplied, to match `Dataset.arrays` bit for bit.
            images = images / 255.0
        if augmenting and seed is not None:
            images = augmentation.augment_images(
                images, seed, crop_flip=crop_flip, cutout_size=cutout
            )
        labels = tf.cast(labels, tf.int32)
        if label_mode == "one_hot":
            labels = tf.one_hot(labels, num_classes, dtype=tf.float32)
        return images, labels

    return prepare


def _pipeline(
    x: np.ndarray, y: np.ndarray, *, num_classes: int, batch_size: int, label_mode: str
) -> tf.data.Dataset:
    """Batched `(x, y)` pipeline in the stored order (validation and test splits)."""
    prepare = _prepare_batches(
        num_classes=num_classes, label_mode=label_mode, is_uint8=x.dtype == np.uint8
    )
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size)
    ds = ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)


def load(
    name: str,
    *,
    validation_split: float = 0.1,
    subset_fraction: float = 1.0,
    seed: int = 0,
    data_dir: str | os.PathLike | None = None,
    batch_size: int = 128,
    augment: bool | None = None,
    cutout: int = 0,
    label_mode: str = "one_hot",
    download: bool = True,
) -> Dataset:
    """Loads a dataset as seeded, batched `tf.data` pipelines.

    The validation split is a stratified share of the training data chosen by `seed` (the
    papers use CIFAR 45k/5k and MNIST 55k/5k: `validation_split=0.1` and `1/12`); a stratified
    `subset_fraction` of the rest is then kept, also chosen by `seed`. Training batches are
    reshuffled every epoch; validation and test batches are not; the last batch keeps the
    remainder. Epoch `e`'s order and augmentation depend on `(seed, e)` alone, so two calls
    with the same arguments yield identical batches, epoch after epoch, in any process.

    Training images of CIFAR-10/100 get pad-4 random crops and horizontal flips by default
    (He et al., arXiv:1512.03385), and `cutout` adds DeVries & Taylor's square occlusion
    (arXiv:1708.04552). Evaluation splits are never augmented.

    Args:
        name: One of `metaloss.data.DATASETS`: `"mnist1d"`, `"digits"`, `"spiral"` (offline),
            `"mnist"`, `"fashion_mnist"`, `"cifar10"`, `"cifar100"` (files or download).
        validation_split: Share of the training data held out for validation, in [0, 1);
            `0` means no validation split. Defaults to `0.1`.
        subset_fraction: Share of the remaining training data kept, in (0, 1].
            Defaults to `1.0`.
        seed: Seed of the splits, the shuffling and the augmentation. Defaults to `0`.
        data_dir: Folder searched for the dataset files before the Keras cache.
            Defaults to `None`.
        batch_size: Examples per batch. Defaults to `128`.
        augment: Whether to crop-and-flip training images; `None` means yes for CIFAR only.
            Defaults to `None`.
        cutout: Side in pixels of the cutout square on training images; `0` disables it.
            Defaults to `0`.
        label_mode: `"one_hot"` (float32 one-hot labels) or `"sparse"` (int32 class ids).
            Defaults to `"one_hot"`.
        download: Whether to download missing files into the Keras cache; when False the
            network is never touched. Defaults to `True`.

    Returns:
        A `Dataset`.

    Raises:
        ValueError: For an unknown `name` or an invalid argument.
        FileNotFoundError: When the files are missing and cannot be downloaded.

    Example:

    >>> ds = load("mnist1d", validation_split=0.1, batch_size=100, label_mode="sparse")
    >>> ds.num_examples
    {'train': 3600, 'validation': 400, 'test': 1000}
    """
    info = catalog.check_name(name)
    _check_arguments(
        info, validation_split, subset_fraction, seed, batch_size, augment, cutout, label_mode
    )
    raw = _raw_data(name, data_dir, download)
    train_idx, val_idx = offline.stratified_split(raw.y_train, validation_split, [seed, 0])
    if subset_fraction < 1:
        _, kept = offline.stratified_split(raw.y_train[train_idx], subset_fraction, [seed, 1])
        train_idx = train_idx[kept]
    splits = {"train": (raw.x_train[train_idx], raw.y_train[train_idx])}
    if validation_split > 0:
        splits["validation"] = (raw.x_train[val_idx], raw.y_train[val_idx])
    splits["test"] = (raw.x_test, raw.y_test)

    common = {"num_classes": info.num_classes, "batch_size": batch_size, "label_mode": label_mode}
    crop_flip = info.default_augment if augment is None else augment
    x_train, y_train = splits["train"]
    train_epoch = EpochBatches(
        x_train,
        y_train,
        seed=seed,
        batch_size=batch_size,
        prepare=_prepare_batches(
            num_classes=info.num_classes,
            label_mode=label_mode,
            is_uint8=x_train.dtype == np.uint8,
            crop_flip=crop_flip,
            cutout=cutout,
        ),
    )
    validation = _pipeline(*splits["validation"], **common) if validation_split > 0 else None
    test = _pipeline(*splits["test"], **common)
    mean, std = channel_statistics(splits["train"][0])
    return Dataset(
        name=name,
        train=train_epoch.reshuffling(),
        train_epoch=train_epoch,
        validation=validation,
        test=test,
        num_classes=info.num_classes,
        input_shape=tuple(info.input_shape),
        channel_mean=mean,
        channel_std=std,
        num_examples={s: len(splits[s][1]) if s in splits else 0 for s in SPLITS},
        _splits=splits,
    )
