"""Datasets that need no file and no network: MNIST-1D, scikit-learn digits and the spiral.

Also holds the stratified splitting used for every dataset's validation and subset splits.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Sequence

import numpy as np

from metaloss.data.catalog import RawData

#: Generator seeds of the spiral's fixed training and test draws.
SPIRAL_TRAIN_SEED = 0
SPIRAL_TEST_SEED = 1
#: Seed of the fixed 20% test split of `digits` (independent of `load`'s `seed`).
DIGITS_TEST_SEED = 0
DIGITS_TEST_FRACTION = 0.2


def stratified_split(
    y: np.ndarray, fraction: float, seed: int | Sequence[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Splits indices so that every class keeps its share, with an exact total size.

    The split takes `round(fraction * len(y))` examples (at least 1 and at most `len(y) - 1`
    when `0 < fraction < 1`), allotted to classes in proportion to their counts; the rounding
    remainders go to the classes with the largest fractional parts.

    Args:
        y: Integer class ids, shape `(N,)`.
        fraction: Share of the examples that goes to the split, in [0, 1].
        seed: Seed (or seed sequence) of the NumPy generator choosing the examples.

    Returns:
        `(rest, split)`: sorted index arrays partitioning `range(N)`.

    Example:

    >>> rest, split = stratified_split(np.array([0, 0, 1, 1]), 0.5, seed=0)
    >>> sorted(np.array([0, 0, 1, 1])[split].tolist())
    [0, 1]
    """
    y = np.asarray(y)
    n = len(y)
    k = round(float(fraction) * n)
    if 0 < fraction < 1 and n > 1:
        k = min(max(k, 1), n - 1)
    classes, counts = np.unique(y, return_counts=True)
    quota = k * counts / max(n, 1)
    allot = np.floor(quota).astype(np.int64)
    leftover = k - int(allot.sum())
    allot[np.argsort(-(quota - allot), kind="stable")[:leftover]] += 1
    rng = np.random.default_rng(seed)
    pairs = zip(classes, allot, strict=True)
    picked = [rng.permutation(np.flatnonzero(y == c))[:a] for c, a in pairs]
    split = np.sort(np.concatenate([np.zeros(0, np.int64), *picked]))
    rest = np.setdiff1d(np.arange(n), split)
    return rest, split


@functools.lru_cache(maxsize=1)
def load_mnist1d() -> RawData:
    """Builds the canonical MNIST-1D dataset procedurally (never downloads).

    Uses `mnist1d.data.make_dataset` with the package's default arguments, including its
    benchmark seed 42, so everyone gets the published data: 4000 training and 1000 test
    sequences of length 40 over 10 classes (Greydanus, *Scaling down deep learning*,
    arXiv:2011.14439). `make_dataset` reseeds NumPy's and Python's global generators; their
    states are restored afterwards. The result is memoized in-process.

    Returns:
        `RawData` with float32 `(N, 40)` sequences and int32 labels (read-only arrays).

    Example:

    >>> load_mnist1d().x_train.shape
    (4000, 40)
    """
    import mnist1d.data  # Imported here: it pulls in matplotlib.

    # The legacy global generators are exactly what `make_dataset` clobbers.
    numpy_state, python_state = np.random.get_state(), random.getstate()  # noqa: NPY002
    try:
        data = mnist1d.data.make_dataset(mnist1d.data.get_dataset_args())
    finally:
        np.random.set_state(numpy_state)  # noqa: NPY002
        random.setstate(python_state)
    return _read_only(
        RawData(
            np.asarray(data["x"], np.float32),
            np.asarray(data["y"], np.int32),
            np.asarray(data["x_test"], np.float32),
            np.asarray(data["y_test"], np.int32),
        )
    )


def load_digits() -> RawData:
    """Loads scikit-learn's bundled 8x8 digits with a fixed stratified 20% test split.

    The 1797 images have values 0..16, scaled here to [0, 1]. The test split (359 images)
    is the same whatever seed `load` is given.

    Returns:
        `RawData` with float32 `(N, 8, 8, 1)` images in [0, 1] and int32 labels.

    Example:

    >>> load_digits().x_test.shape
    (359, 8, 8, 1)
    """
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    x = (np.asarray(bunch.images, np.float32) / 16.0)[..., None]
    y = np.asarray(bunch.target, np.int32)
    train, test = stratified_split(y, DIGITS_TEST_FRACTION, DIGITS_TEST_SEED)
    return RawData(x[train], y[train], x[test], y[test])


def make_spiral(
    points_per_class: int = 100,
    num_classes: int = 3,
    max_angle: float = 4 * np.pi,
    noise: float = 0.2,
    seed: int = SPIRAL_TRAIN_SEED,
) -> tuple[np.ndarray, np.ndarray]:
    """Draws the interleaved-spirals toy problem of the dynamical-loss paper.

    For class `c`: `r = linspace(0, 1, n)`, `t = c·2π/num_classes + linspace(0, max_angle, n)
    + noise·N(0, 1)`, and the points are `r·(sin t, cos t)` (Ruiz-Garcia, Zhang, Schoenholz,
    Liu, *Tilting the playing field: Dynamical loss functions for machine learning*,
    arXiv:2102.03793).

    Args:
        points_per_class: Points per arm. Defaults to `100`.
        num_classes: Number of arms. Defaults to `3`.
        max_angle: Angle swept by each arm (4π: two turns). Defaults to `4 * np.pi`.
        noise: Standard deviation of the angular noise. Defaults to `0.2`.
        seed: Seed of the NumPy generator. Defaults to `SPIRAL_TRAIN_SEED`.

    Returns:
        `(x, y)`: float32 `(num_classes * points_per_class, 2)` points (radii in [0, 1]) and
        int32 labels, grouped by class.

    Example:

    >>> x, y = make_spiral()
    >>> x.shape, int(y.max())
    ((300, 2), 2)
    """
    rng = np.random.default_rng(seed)
    r = np.linspace(0.0, 1.0, points_per_class)
    xs, ys = [], []
    for c in range(num_classes):
        t = c * 2 * np.pi / num_classes + np.linspace(0.0, max_angle, points_per_class)
        t = t + noise * rng.standard_normal(points_per_class)
        xs.append(np.stack([r * np.sin(t), r * np.cos(t)], axis=1))
        ys.append(np.full(points_per_class, c))
    return np.concatenate(xs).astype(np.float32), np.concatenate(ys).astype(np.int32)


def load_spiral() -> RawData:
    """Returns the 3-class spiral: a fixed training draw and an independent test draw.

    Returns:
        `RawData` with 300 training and 300 test float32 points and int32 labels.

    Example:

    >>> load_spiral().x_test.shape
    (300, 2)
    """
    x_train, y_train = make_spiral(seed=SPIRAL_TRAIN_SEED)
    x_test, y_test = make_spiral(seed=SPIRAL_TEST_SEED)
    return RawData(x_train, y_train, x_test, y_test)


def _read_only(data: RawData) -> RawData:
    for array in data:
        array.flags.writeable = False
    return data


#: Loader of each offline dataset, by name.
OFFLINE_LOADERS = {"mnist1d": load_mnist1d, "digits": load_digits, "spiral": load_spiral}
