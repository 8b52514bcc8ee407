"""Seeded, stateless image augmentation for `tf.data` pipelines.

Every random draw comes from `tf.random.stateless_*` ops keyed by an explicit seed, so the same
seed gives the same augmented batch, on any device and in any `map` parallelism. All functions
take a batch of NHWC float images in [0, 1] (a single HWC image also works) and keep them there.
"""

from __future__ import annotations

import tensorflow as tf

#: Pixels of zero padding on each side before the random crop (He et al., arXiv:1512.03385).
CROP_PADDING = 4


def _as_batch(images: tf.Tensor) -> tuple[tf.Tensor, bool]:
    images = tf.convert_to_tensor(images)
    if images.shape.rank == 3:
        return images[None], True
    if images.shape.rank != 4:
        raise ValueError(f"Expected images of shape (B, H, W, C) or (H, W, C); got {images.shape}.")
    return images, False


def random_crop_flip(
    images: tf.Tensor, seed: tf.Tensor, padding: int = CROP_PADDING, flip: bool = True
) -> tf.Tensor:
    """Pads by `padding` zeros, crops back to size at a random offset, and flips half.

    This is the standard CIFAR augmentation of He, Zhang, Ren, Sun, *Deep residual learning for
    image recognition*, arXiv:1512.03385: 4 pixels of padding on each side, a random crop of the
    original size, and a random horizontal flip, drawn independently for every image.

    Args:
        images: `(B, H, W, C)` (or `(H, W, C)`) float images.
        seed: Shape `(2,)` integer seed of the stateless random ops.
        padding: Pixels of zero padding on each side. Defaults to `4`.
        flip: Whether to flip each image left-right with probability 1/2. Defaults to `True`.

    Returns:
        The augmented images, same shape and dtype.

    Example:

    >>> x = tf.random.uniform((8, 32, 32, 3))
    >>> random_crop_flip(x, seed=tf.constant([1, 2])).shape
    TensorShape([8, 32, 32, 3])
    """
    batch, single = _as_batch(images)
    crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, num=2))
    size = tf.shape(batch)
    n, height, width = size[0], size[1], size[2]
    padded = tf.pad(batch, [[0, 0], [padding, padding], [padding, padding], [0, 0]])
    offsets = tf.random.stateless_uniform(
        [n, 2], crop_seed, minval=0, maxval=2 * padding + 1, dtype=tf.int32
    )
    rows = offsets[:, :1] + tf.range(height)[None, :]
    cols = offsets[:, 1:] + tf.range(width)[None, :]
    out = tf.gather(padded, rows, axis=1, batch_dims=1)
    out = tf.gather(out, cols, axis=2, batch_dims=1)
    if flip:
        flips = tf.random.stateless_uniform([n], flip_seed) < 0.5
        out = tf.where(flips[:, None, None, None], tf.reverse(out, axis=[2]), out)
    return out[0] if single else out


def cutout(images: tf.Tensor, size: int, seed: tf.Tensor) -> tf.Tensor:
    """Zeroes a `size` x `size` square at a random centre of every image.

    The centre is uniform over the image and the square is clipped at the borders, as in
    DeVries & Taylor, *Improved regularization of convolutional neural networks with cutout*,
    arXiv:1708.04552.

    Args:
        images: `(B, H, W, C)` (or `(H, W, C)`) float images.
        size: Side of the square in pixels; `0` leaves the images unchanged.
        seed: Shape `(2,)` integer seed of the stateless random ops.

    Returns:
        The images with one square zeroed in each, same shape and dtype.

    Example:

    >>> x = tf.ones((4, 32, 32, 3))
    >>> float(tf.reduce_min(cutout(x, 8, seed=tf.constant([0, 1]))))
    0.0
    """
    if size <= 0:
        return images
    batch, single = _as_batch(images)
    shape = tf.shape(batch)
    n, height, width = shape[0], shape[1], shape[2]
    y_seed, x_seed = tf.unstack(tf.random.experimental.stateless_split(seed, num=2))
    top = tf.random.stateless_uniform([n, 1], y_seed, 0, height, tf.int32) - size // 2
    left = tf.random.stateless_uniform([n, 1], x_seed, 0, width, tf.int32) - size // 2
    rows = tf.range(height)[None, :]
    cols = tf.range(width)[None, :]
    in_rows = (rows >= top) & (rows < top + size)
    in_cols = (cols >= left) & (cols < left + size)
    square = in_rows[:, :, None] & in_cols[:, None, :]
    keep = tf.cast(tf.logical_not(square), batch.dtype)[..., None]
    out = batch * keep
    return out[0] if single else out


def augment_images(
    images: tf.Tensor, seed: tf.Tensor, *, crop_flip: bool = True, cutout_size: int = 0
) -> tf.Tensor:
    """Applies the training augmentation: pad-and-crop plus flip, then optional cutout.

    Args:
        images: `(B, H, W, C)` (or `(H, W, C)`) float images in [0, 1].
        seed: Shape `(2,)` integer seed; the same seed gives the same result.
        crop_flip: Whether to apply `random_crop_flip`. Defaults to `True`.
        cutout_size: Side of the `cutout` square; `0` disables it. Defaults to `0`.

    Returns:
        The augmented images, still in [0, 1].

    Example:

    >>> x = tf.random.uniform((2, 32, 32, 3))
    >>> augment_images(x, tf.constant([3, 4]), cutout_size=16).shape
    TensorShape([2, 32, 32, 3])
    """
    crop_seed, cutout_seed = tf.unstack(tf.random.experimental.stateless_split(seed, num=2))
    if crop_flip:
        images = random_crop_flip(images, crop_seed)
    if cutout_size > 0:
        images = cutout(images, cutout_size, cutout_seed)
    return images
