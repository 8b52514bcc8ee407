"""LearnedLoss: the network against a NumPy forward pass, its config, its weights, its errors."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from metaloss import losses
from metaloss.losses import LearnedLoss, learned_loss, smooth_leaky_relu


def numpy_network(weights, pairs, leak=0.01, smoothness=10.0, softplus_output=True):
    """ℓ_φ written out in NumPy (float64), independent of keras.ops."""
    hidden = pairs
    for index in range(0, len(weights), 2):
        hidden = hidden @ weights[index] + weights[index + 1]
        if index < len(weights) - 2:
            hidden = np.log1p(np.exp(smoothness * hidden)) / smoothness * (1 - leak) + leak * hidden
    if softplus_output:
        hidden = np.log1p(np.exp(hidden))
    return hidden[..., 0]


def test_smooth_leaky_relu_hand_values():
    # φ(0) = log(2)/β (1 - γ); far right φ(u) ≈ u; far left φ(u) ≈ γu.
    u = np.array([0.0, 30.0, -30.0])
    values = np.asarray(smooth_leaky_relu(u, leak=0.1, smoothness=2.0))
    np.testing.assert_allclose(values, [np.log(2) / 2 * 0.9, 30.0, -3.0], rtol=1e-6)


def test_value_matches_a_numpy_forward_pass_for_both_label_formats():
    loss = LearnedLoss(seed=1, from_logits=True)
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(6, 4)) * 2
    labels = rng.integers(0, 4, size=6)
    one_hot = np.eye(4)[labels]
    probabilities = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    pairs = np.stack([one_hot, probabilities], axis=-1)
    expected = numpy_network(loss.get_weights(), pairs).mean(axis=-1)
    np.testing.assert_allclose(loss.call(one_hot, logits.astype("float32")), expected, rtol=1e-5)
    np.testing.assert_allclose(loss.call(labels, logits.astype("float32")), expected, rtol=1e-5)
    np.testing.assert_allclose(float(loss(labels, logits)), expected.mean(), rtol=1e-5)


def test_linear_output_and_custom_architecture():
    loss = LearnedLoss(hidden_units=(3,), output_activation="linear", leak=0.2, smoothness=1.0)
    pairs = np.stack([np.eye(3)[[0, 2]], np.full((2, 3), 1 / 3)], axis=-1)
    expected = numpy_network(loss.get_weights(), pairs, 0.2, 1.0, softplus_output=False)
    np.testing.assert_allclose(
        loss.call([0, 2], np.full((2, 3), 1 / 3)), expected.mean(-1), rtol=1e-5
    )


def test_regression_reads_targets_against_outputs():
    loss = LearnedLoss(seed=2, task="regression")
    targets, outputs = np.array([[0.5], [-1.0]]), np.array([[0.25], [2.0]])
    expected = numpy_network(loss.get_weights(), np.stack([targets, outputs], -1))[:, 0]
    np.testing.assert_allclose(loss.call(targets, outputs), expected, rtol=1e-5)


def test_per_output_is_the_curve_the_loss_averages():
    loss = LearnedLoss(seed=4)
    p = np.array([[0.7, 0.2, 0.1]])
    expected = (
        loss.per_output(1.0, 0.7) + loss.per_output(0.0, 0.2) + loss.per_output(0.0, 0.1)
    ) / 3
    np.testing.assert_allclose(loss.call([0], p), [float(expected)], rtol=1e-6)
    assert tuple(loss.per_output(0.0, np.linspace(0, 1, 5)).shape) == (5,)


def test_seed_fixes_the_initial_network_and_initialisation_follows_fan_in():
    a, b = LearnedLoss(seed=7), LearnedLoss(seed=7)
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wb)
    # U(±1/√fan_in): the 40×40 kernel stays within ±1/√40.
    assert np.abs(a.get_weights()[2]).max() <= 1 / np.sqrt(40)
    assert not np.allclose(LearnedLoss(seed=8).get_weights()[0], a.get_weights()[0])


def test_config_holds_architecture_and_weights_and_round_trips_exactly():
    loss = LearnedLoss(hidden_units=(5, 4), leak=0.05, seed=0, from_logits=True)
    loss.trainable_variables[0].assign(loss.trainable_variables[0] * 3.0)  # "learned"
    config = json.loads(json.dumps(losses.serialize(loss)))
    assert config["config"]["hidden_units"] == [5, 4]
    restored = losses.deserialize(config)
    assert isinstance(restored, LearnedLoss) and restored.from_logits
    for wa, wb in zip(loss.get_weights(), restored.get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wb)


def test_saved_json_reloads_through_get(tmp_path):
    loss = LearnedLoss(seed=5, from_logits=True)
    path = losses.save(loss, tmp_path / "learned_loss.json")
    restored = losses.get(str(path))
    logits = np.random.default_rng(1).normal(size=(3, 4)).astype("float32")
    np.testing.assert_array_equal(restored.call([0, 1, 2], logits), loss.call([0, 1, 2], logits))


def test_gradients_reach_the_network_weights():
    loss = LearnedLoss(seed=0, from_logits=True)
    with tf.GradientTape() as tape:
        value = loss([0, 1], tf.constant([[1.0, -1.0], [0.5, 0.2]]))
    gradients = tape.gradient(value, loss.trainable_variables)
    assert all(g is not None and np.isfinite(g.numpy()).all() for g in gradients)


def test_model_weights_do_not_include_the_loss_network():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(loss=LearnedLoss(seed=0))
    assert len(model.weights) == 2


def test_set_weights_assigns_and_validates():
    loss = LearnedLoss(hidden_units=(2,), seed=0)
    zeros = [np.zeros_like(w) for w in loss.get_weights()]
    loss.set_weights(zeros)
    np.testing.assert_allclose(loss.call([0], [[0.5, 0.5]]), [np.log(2)], rtol=1e-6)
    with pytest.raises(ValueError, match="`weights`"):
        loss.set_weights(zeros[:-1])


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"hidden_units": (40, 0)}, "hidden_units"),
        ({"hidden_units": "40"}, "hidden_units"),
        ({"leak": 1.0}, "leak"),
        ({"smoothness": 0.0}, "smoothness"),
        ({"output_activation": "relu"}, "output_activation"),
        ({"task": "ranking"}, "task"),
        ({"weights": [[1.0]]}, "weights"),
        ({"hidden_units": (1,), "weights": [[[np.nan], [0.0]], [0.0], [[1.0]], [0.0]]}, "weights"),
    ],
)
def test_invalid_arguments_name_the_argument(kwargs, argument):
    with pytest.raises(ValueError, match=f"`{argument}`"):
        LearnedLoss(**kwargs)


def test_function_form_matches_the_class():
    loss = LearnedLoss(seed=9)
    p = np.array([[0.6, 0.4]], dtype="float32")
    np.testing.assert_allclose(
        learned_loss([1], p, loss.get_weights()), loss.call([1], p), rtol=1e-6
    )
