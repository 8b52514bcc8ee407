"""Shared helpers of the model tests."""

import keras
import numpy as np


def logits(model, shape):
    """The model's float32 outputs on a batch of two uniform random inputs of ``shape``."""
    x = np.random.default_rng(0).uniform(size=(2, *shape)).astype("float32")
    outputs = keras.ops.convert_to_numpy(model(x, training=False))
    assert outputs.dtype == np.float32
    return outputs
