"""Probability MSE: hand values, Keras's MSE on the softmax, its learning rule."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from metaloss.losses import ProbabilityMSE, probability_mse


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def test_probability_mse_hand_values():
    # x = (0, 1, 0), y = (0.2, 0.5, 0.3): (0.04 + 0.25 + 0.09) / 3
    assert float(probability_mse([1], [[0.2, 0.5, 0.3]])[0]) == pytest.approx(0.38 / 3)


def test_probability_mse_from_logits_is_keras_mse_on_the_softmax():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(12, 5))
    labels = np.eye(5)[rng.integers(0, 5, size=12)]
    ours = ProbabilityMSE(from_logits=True, reduction="none", dtype="float64")(labels, logits)
    keras_mse = keras.losses.MeanSquaredError(reduction="none", dtype="float64")(
        labels, _softmax(logits)
    )
    np.testing.assert_allclose(ours, keras_mse, rtol=1e-10)


def test_probability_mse_gradient_in_probability_space():
    """∂L/∂y_k = (2/n)(y_k - x_k): the γ = 2(x - y) learning rule up to the 1/n scale."""
    rng = np.random.default_rng(1)
    x = np.eye(4)[rng.integers(0, 4, size=6)]
    y = tf.constant(rng.dirichlet(np.ones(4), size=6))
    with tf.GradientTape() as tape:
        tape.watch(y)
        total = tf.reduce_sum(probability_mse(x, y))
    np.testing.assert_allclose(tape.gradient(total, y), 2 * (y.numpy() - x) / 4, rtol=1e-10)
