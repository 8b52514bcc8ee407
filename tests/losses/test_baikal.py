"""Baikal: hand values, the γ = 1/y + x/y² learning rule, logits, clipping."""

import math

import numpy as np
import pytest
import tensorflow as tf

from metaloss.losses import Baikal, baikal


def test_hand_values():
    # x = (1, 0), y = (0.5, 0.5): -(log .5 - 1/.5 + log .5)/2 = 1 + log 2
    assert float(baikal([0], [[0.5, 0.5]])[0]) == pytest.approx(1 + math.log(2), rel=1e-6)
    # x = (0, 0, 1), y = (0.2, 0.3, 0.5): -(log .2 + log .3 + log .5 - 2)/3
    expected = -(math.log(0.2) + math.log(0.3) + math.log(0.5) - 2) / 3
    assert float(baikal([2], [[0.2, 0.3, 0.5]])[0]) == pytest.approx(expected, rel=1e-6)


def test_gradient_is_the_baikal_learning_rule():
    """∂L/∂y_k = -(1/n)(1/y_k + x_k/y_k²) (arXiv 2010.00788, learning-rule decomposition)."""
    rng = np.random.default_rng(0)
    x = np.eye(5)[rng.integers(0, 5, size=8)]
    y = tf.constant(rng.dirichlet(np.ones(5) * 3, size=8))
    with tf.GradientTape() as tape:
        tape.watch(y)
        loss = tf.reduce_sum(baikal(x, y))
    gradient = tape.gradient(loss, y).numpy()
    y = y.numpy()
    np.testing.assert_allclose(gradient, -(1 / y + x / y**2) / 5, rtol=1e-10)


def test_from_logits_equals_probabilities_away_from_clipping():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(10, 4))
    labels = rng.integers(0, 4, size=10)
    probs = tf.nn.softmax(logits).numpy()
    np.testing.assert_allclose(
        Baikal(from_logits=True, reduction="none", dtype="float64")(labels, logits),
        Baikal(reduction="none", dtype="float64")(labels, probs),
        rtol=1e-10,
    )


def test_zero_probability_is_clipped_to_epsilon():
    # y = (1, 0): log 0 → log ε = log 1e-7; target term 1/1 = 1. L = -(0 - 1 + log 1e-7)/2
    expected = -(0 - 1 + math.log(1e-7)) / 2
    assert float(baikal([0], [[1.0, 0.0]])[0]) == pytest.approx(expected, rel=1e-5)


def test_config_has_exactly_the_constructor_arguments():
    config = Baikal(from_logits=True, reduction="sum", name="b").get_config()
    assert config == {"name": "b", "reduction": "sum", "dtype": None, "from_logits": True}
    assert Baikal.from_config(config).get_config() == config


def test_from_logits_must_be_a_bool():
    with pytest.raises(ValueError, match="argument `from_logits`"):
        Baikal(from_logits="yes")
