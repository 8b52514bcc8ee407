"""Small synthetic problems for trainer tests (no dataset loader involved)."""

import keras
import numpy as np
import tensorflow as tf


def blobs(n=96, features=6, classes=3, seed=0):
    """Gaussian blobs: ``(x, one_hot_y)`` float32 arrays."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, size=n)
    centres = rng.normal(scale=3.0, size=(classes, features))
    x = (centres[labels] + rng.normal(size=(n, features))).astype("float32")
    return x, np.eye(classes, dtype="float32")[labels]


def dataset(x, y, batch_size=16):
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size)


def mlp(features=6, classes=3, seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input((features,)),
            keras.layers.Dense(16, activation="tanh"),
            keras.layers.Dense(classes),
        ]
    )
