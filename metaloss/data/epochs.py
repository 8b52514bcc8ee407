"""Training batches as a function of (seed, epoch), so that a resumed run sees the batches the
uninterrupted run would have seen.

A `tf.data` pipeline that reshuffles on every iteration (``shuffle(...,
reshuffle_each_iteration=True)``) draws each epoch's order from a generator that lives in the
pipeline object: a new process, resuming at epoch 5, starts that generator again and replays
epoch 0's order. Here every epoch is built from its own index instead: the order of epoch ``e``
is the argsort of ``stateless_uniform(seed=(seed, e))`` and batch ``b`` of it is augmented with
the stateless seed ``fold_in((seed, e), b)``. Nothing depends on how often a pipeline was
iterated before.

Anything that trains by epochs takes such a source as a callable ``epoch -> tf.data.Dataset``
(:class:`EpochBatches` is one); :func:`source_of` turns whatever a user passes into one, and
:func:`steps_per_epoch` and :func:`one_batch_ahead` build new sources from old ones.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import tensorflow as tf

__all__ = [
    "EpochBatches",
    "EpochSource",
    "batches_per_epoch",
    "one_batch_ahead",
    "source_of",
    "steps_per_epoch",
]

#: ``epoch -> tf.data.Dataset``: the batches of one epoch.
EpochSource = Callable[[int], tf.data.Dataset]

# A batch function gets (images, labels, seed) and returns the batch as the model sees it.
_Prepare = Callable[[tf.Tensor, tf.Tensor, tf.Tensor], tuple[tf.Tensor, tf.Tensor]]


class EpochBatches:
    """The training split, batched, in an order and augmentation fixed by ``(seed, epoch)``.

    Calling it with an epoch gives that epoch's batches; :meth:`reshuffling` gives a single
    ``tf.data.Dataset`` whose ``i``-th pass is epoch ``i`` (for ``model.fit``), carrying this
    object as its ``for_epoch`` attribute so that :class:`metaloss.training.Trainer` can ask for
    any epoch directly.

    Args:
        x: inputs, ``(N, ...)`` (uint8 images or floats), kept on the host CPU.
        y: int class ids, ``(N,)``.
        seed: the run's seed.
        batch_size: examples per batch; the last batch keeps the remainder.
        prepare: ``(x_batch, y_batch, seed) -> (x, y)``: casting, augmentation with the
            batch's stateless seed (shape ``(2,)``, int64), label encoding.

    Example:

    >>> data = metaloss.data.load("spiral", batch_size=100)
    >>> x5, _ = next(iter(data.train_epoch(5)))   # epoch 5, in this or any other process
    >>> bool(tf.reduce_all(x5 == next(iter(data.train_epoch(5)))[0]))
    True
    """

    def __init__(
        self, x: np.ndarray, y: np.ndarray, *, seed: int, batch_size: int, prepare: _Prepare
    ) -> None:
        with tf.device("/cpu:0"):
            self._x = tf.constant(x)
            self._y = tf.constant(y)
            # Counts the passes of `reshuffling()` (a stateless pass needs its own index).
            self._passes = tf.Variable(0, dtype=tf.int64, trainable=False)
        self._size = len(y)
        self._seed = int(seed)
        self._batch_size = int(batch_size)
        self._prepare = prepare
        self.batches = -(-self._size // self._batch_size)

    def _pass(self, epoch: tf.Tensor) -> tf.data.Dataset:
        pass_seed = tf.stack([tf.constant(self._seed, tf.int64), tf.cast(epoch, tf.int64)])
        keys = tf.random.stateless_uniform(
            [self._size], seed=pass_seed, minval=None, maxval=None, dtype=tf.int64
        )
        order = tf.argsort(keys, stable=True)

        def gather(batch, indices):
            batch_seed = tf.random.experimental.stateless_fold_in(pass_seed, batch)
            return self._prepare(
                tf.gather(self._x, indices), tf.gather(self._y, indices), batch_seed
            )

        batches = tf.data.Dataset.from_tensor_slices(order).batch(self._batch_size).enumerate()
        return batches.map(gather, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    def __call__(self, epoch: int) -> tf.data.Dataset:
        if isinstance(epoch, bool) or not isinstance(epoch, int | np.integer) or epoch < 0:
            raise ValueError(
                "Invalid value for argument `epoch`. Expected an integer >= 0. "
                f"Received: epoch={epoch!r}"
            )
        return self._pass(tf.constant(int(epoch), tf.int64)).prefetch(tf.data.AUTOTUNE)

    def window(self, start: int, count: int) -> tf.data.Dataset:
        """Batches ``start .. start + count - 1`` of the passes ``self(0)``, ``self(1)``, ...

        One pipeline, whatever the number of passes it spans (full-batch data spans many).
        """
        first, last = start // self.batches, (start + count - 1) // self.batches
        passes = tf.data.Dataset.range(first, last + 1).flat_map(self._pass)
        return passes.skip(start % self.batches).take(count).prefetch(tf.data.AUTOTUNE)

    def reshuffling(self) -> tf.data.Dataset:
        """One dataset whose ``i``-th pass (counted from its creation) is epoch ``i``."""

        def next_pass(_):
            return self._pass(self._passes.assign_add(1) - 1)

        stream = tf.data.Dataset.from_tensors(0).flat_map(next_pass)
        stream = stream.apply(tf.data.experimental.assert_cardinality(self.batches))
        stream = stream.prefetch(tf.data.AUTOTUNE)
        stream.for_epoch = self
        return stream


def batches_per_epoch(source: EpochSource) -> int | None:
    """Batches in one epoch of ``source`` (its epoch 0), or `None` when unknown or infinite."""
    if isinstance(source, EpochBatches):
        return source.batches
    cardinality = int(source(0).cardinality().numpy())
    return cardinality if cardinality > 0 else None


def source_of(train, argument: str = "train") -> EpochSource:
    """``train`` as an epoch source.

    A callable is one already. A `tf.data.Dataset` made by :func:`metaloss.data.load` knows its
    epochs (its ``for_epoch``); any other dataset is iterated anew every epoch, so its order is
    whatever its own pipeline gives on that iteration.

    Raises:
        ValueError: for anything else, naming ``argument``.
    """
    if isinstance(train, tf.data.Dataset):
        return getattr(train, "for_epoch", None) or (lambda epoch: train)
    if callable(train):
        return train
    raise ValueError(
        f"Invalid value for argument `{argument}`. Expected a tf.data.Dataset or a callable "
        f"epoch -> tf.data.Dataset. Received: {argument}={train!r}"
    )


def steps_per_epoch(source: EpochSource, steps: int) -> EpochSource:
    """Epochs of ``steps`` batches each, cut from ``source``'s passes laid end to end.

    Epoch ``e`` is batches ``e·steps .. (e+1)·steps - 1`` of the stream ``source(0)``,
    ``source(1)``, ... (Keras's ``fit(steps_per_epoch=...)`` over a repeated dataset), so it
    too is a function of the epoch alone.
    """
    if isinstance(source, EpochBatches):
        return lambda epoch: source.window(epoch * steps, steps)
    per_pass = batches_per_epoch(source)
    if per_pass is None:
        raise ValueError(
            "Invalid value for argument `train`. Expected a finite dataset to cut into epochs "
            "of `steps_per_epoch` batches. Received: a dataset of unknown or infinite length"
        )

    def epoch_of_steps(epoch: int) -> tf.data.Dataset:
        first = epoch * steps
        last = first + steps - 1
        passes = [source(p) for p in range(first // per_pass, last // per_pass + 1)]
        stream = passes[0]
        for later in passes[1:]:
            stream = stream.concatenate(later)
        return stream.skip(first % per_pass).take(steps)

    return epoch_of_steps


def one_batch_ahead(source: EpochSource) -> EpochSource:
    """For every epoch, the stream of batches that follow ``source``'s batches one by one.

    Batch ``b`` of epoch ``e`` of the result is batch ``b + 1`` of epoch ``e`` of ``source``;
    the last one is the first batch of epoch ``e + 1``. Zipped with ``source(e)``, every batch
    is paired with the batch that comes after it in training.
    """

    def ahead(epoch: int) -> tf.data.Dataset:
        if isinstance(source, EpochBatches):
            return source.window(epoch * source.batches + 1, source.batches)
        return source(epoch).skip(1).concatenate(source(epoch + 1).take(1))

    return ahead
