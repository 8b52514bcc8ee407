"""Poly-1: hand values, Keras's cross-entropy plus ε(1 - p_t), the paper's logit gradient."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from metaloss.losses import PolyLoss, poly_loss


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def test_poly_loss_hand_values():
    # x = (0, 0, 1), y = (0.2, 0.3, 0.5), ε = 1: -log 0.5 + (1 - 0.5)
    assert float(poly_loss([2], [[0.2, 0.3, 0.5]])[0]) == pytest.approx(math.log(2) + 0.5)
    assert float(poly_loss([2], [[0.2, 0.3, 0.5]], epsilon=-1.0)[0]) == pytest.approx(
        math.log(2) - 0.5
    )


@pytest.mark.parametrize("epsilon", [0.0, 1.0, -0.5, 3.0])
def test_poly_loss_is_keras_cross_entropy_plus_epsilon_times_one_minus_pt(epsilon):
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(16, 6)) * 3
    labels = rng.integers(0, 6, size=16)
    cross_entropy = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="none")(
        labels, logits
    )
    p_target = _softmax(logits)[np.arange(16), labels]
    ours = PolyLoss(epsilon=epsilon, from_logits=True, reduction="none", dtype="float64")(
        labels, logits
    )
    np.testing.assert_allclose(ours, np.asarray(cross_entropy) + epsilon * (1 - p_target), 1e-6)


def test_poly_loss_logit_gradient_matches_the_paper():
    """Poly-1's gradient in logits: (p - x)(1 + ε p_t) (Leng et al., ICLR 2022, Eq. 3 rearranged).

    d/dz_k [-log p_t + ε(1 - p_t)] = (p_k - x_k) - ε p_t (x_k - p_k) = (p_k - x_k)(1 + ε p_t).
    """
    rng = np.random.default_rng(3)
    logits = tf.constant(rng.normal(size=(5, 4)))
    labels = rng.integers(0, 4, size=5)
    with tf.GradientTape() as tape:
        tape.watch(logits)
        total = tf.reduce_sum(poly_loss(labels, logits, epsilon=2.0, from_logits=True))
    p = _softmax(logits.numpy())
    x = np.eye(4)[labels]
    p_t = (p * x).sum(axis=-1, keepdims=True)
    np.testing.assert_allclose(tape.gradient(total, logits), (p - x) * (1 + 2.0 * p_t), 1e-10)


def test_poly_loss_with_soft_labels_uses_the_expected_target_probability():
    soft = np.array([[0.7, 0.2, 0.1]])
    probs = np.array([[0.5, 0.3, 0.2]])
    expected = -(soft * np.log(probs)).sum() + 1.0 * (1 - (soft * probs).sum())
    assert float(PolyLoss(dtype="float64")(soft, probs)) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("epsilon", ["1", math.inf, math.nan, True, None])
def test_poly_loss_epsilon_must_be_a_finite_number(epsilon):
    with pytest.raises(ValueError, match="argument `epsilon`"):
        PolyLoss(epsilon=epsilon)


def test_poly_loss_config_round_trip_keeps_epsilon():
    loss = PolyLoss(epsilon=0.25, from_logits=True, name="p1")
    rebuilt = PolyLoss.from_config(loss.get_config())
    assert (rebuilt.epsilon, rebuilt.from_logits, rebuilt.name) == (0.25, True, "p1")
