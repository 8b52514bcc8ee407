"""TaylorGLO: hand values, the MSE special case, the γ closed form, conventions, Keras menu."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from metaloss.losses import REFERENCE_CODE_EXAMPLE, TaylorGLO, taylor_glo

MSE_THETA = [0, 0, 0, -2, 0, 2, 0, 0]  # -(1/n)Σ(-y² + 2xy) = mean((x-y)²) - mean(x²)


def random_theta(rng):
    return rng.uniform(-3, 3, size=8)


def reference_code_loss(vector, x, y):
    """The reference code's polynomial: its own order [θ2..θ7, θ0, θ1], no factorials."""
    t2, t3, t4, t5, t6, t7, t0, t1 = vector
    dx, dy = x - t0, y - t1
    f = t2 * dy + t3 * dy**2 + t4 * dy**3 + t5 * dx * dy + t6 * dx * dy**2 + t7 * dx**2 * dy
    return -f.mean(axis=-1)


def test_hand_value_two_classes():
    # x = (1, 0), y = (0.8, 0.2), θ = MSE_THETA: f = (-0.64 + 1.6) + (-0.04) = 0.92; L = -0.46.
    assert float(taylor_glo([[1.0, 0.0]], [[0.8, 0.2]], MSE_THETA)[0]) == pytest.approx(-0.46)


def test_hand_value_every_term():
    # θ = (0.5, 0.25, 1, 2, 3, 4, 5, 6), x = (1, 0), y = (0.75, 0.25), worked by hand:
    # class 0: dx = 0.5, dy = 0.5, terms θ2..θ7 in order:
    #   1·0.5 + ½·2·0.25 + ⅙·3·0.125 + 4·0.25 + ½·5·0.5·0.25 + ½·6·0.25·0.5
    #   = 0.5 + 0.25 + 0.0625 + 1 + 0.3125 + 0.375 = 2.5
    # class 1: dx = -0.5, dy = 0: every term has a dy factor, so 0.
    # L = -(2.5 + 0) / 2 = -1.25
    theta = [0.5, 0.25, 1, 2, 3, 4, 5, 6]
    value = float(taylor_glo([[1.0, 0.0]], [[0.75, 0.25]], theta)[0])
    assert value == pytest.approx(-1.25)


def test_mse_special_case_matches_keras_mse():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(5), size=16).astype("float32")
    labels = rng.integers(0, 5, size=16)
    one_hot = np.eye(5, dtype="float32")[labels]
    expected = keras.losses.MeanSquaredError(reduction="none")(one_hot, probs).numpy() - 1 / 5
    np.testing.assert_allclose(taylor_glo(labels, probs, MSE_THETA), expected, atol=1e-6)


def test_gradient_matches_closed_form_learning_rule():
    """∂L/∂y_k = -(1/n) γ_k with γ = c1 + c_y x + c_yy x² + c_h y + c_hh y² + c_hy x y."""
    rng = np.random.default_rng(1)
    t0, t1, t2, t3, t4, t5, t6, t7 = theta = random_theta(rng)
    # Coefficients derived symbolically in the regularization paper (arXiv 2010.00788).
    c1 = t2 - t1 * t3 + 0.5 * t4 * t1**2 - t0 * t5 + t0 * t1 * t6 + 0.5 * t7 * t0**2
    c_h = t3 - t0 * t6 - t1 * t4
    c_hh, c_hy = 0.5 * t4, t6
    c_y = t5 - t1 * t6 - t0 * t7
    c_yy = 0.5 * t7
    x = np.eye(4)[rng.integers(0, 4, size=8)]
    y = tf.constant(rng.dirichlet(np.ones(4), size=8))
    with tf.GradientTape() as tape:
        tape.watch(y)
        loss = tf.reduce_sum(taylor_glo(x, y, theta))
    gradient = tape.gradient(loss, y).numpy()
    y = y.numpy()
    gamma = c1 + c_y * x + c_yy * x**2 + c_h * y + c_hh * y**2 + c_hy * x * y
    np.testing.assert_allclose(gradient, -gamma / 4, rtol=1e-10)


def test_reference_code_conversion_and_inverse():
    loss = TaylorGLO.from_reference_code(REFERENCE_CODE_EXAMPLE)
    # REFERENCE: converted order (-10.9408, 7.5216, 8.2896, 0.2415, 7.8726, 8.9666, 2.0184, 7.0513)
    # times the factorials (1, 1, 1, 2, 6, 1, 2, 2) of the paper's convention.
    expected = (-10.9408, 7.5216, 8.2896, 0.483, 47.2356, 8.9666, 4.0368, 14.1026)
    np.testing.assert_allclose(loss.theta, expected, rtol=1e-12)
    np.testing.assert_allclose(loss.to_reference_code(), REFERENCE_CODE_EXAMPLE, rtol=1e-12)


def test_reference_code_polynomial_equals_converted_loss():
    rng = np.random.default_rng(2)
    vector = random_theta(rng)
    x = np.eye(3)[rng.integers(0, 3, size=10)]
    y = rng.dirichlet(np.ones(3), size=10)
    loss = TaylorGLO.from_reference_code(vector, reduction="none", dtype="float64")
    np.testing.assert_allclose(loss(x, y), reference_code_loss(vector, x, y), rtol=1e-10)


@pytest.mark.parametrize(
    "theta",
    [[1, 2, 3], [1] * 9, [0, 0, 0, float("nan"), 0, 0, 0, 0], [0] * 7 + [float("inf")], "abc"],
)
def test_invalid_theta_is_a_value_error(theta):
    with pytest.raises(ValueError, match=r"argument `theta`\. Expected 8 finite numbers"):
        TaylorGLO(theta)


def test_from_logits_equals_softmax_probabilities():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(6, 4)).astype("float32")
    theta = random_theta(rng)
    labels = rng.integers(0, 4, size=6)
    from_logits = TaylorGLO(theta, from_logits=True, reduction="none")(labels, logits)
    from_probs = TaylorGLO(theta, reduction="none")(labels, tf.nn.softmax(logits))
    np.testing.assert_allclose(from_logits, from_probs, rtol=1e-5, atol=1e-6)


def test_config_round_trip_through_json():
    loss = TaylorGLO([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8], from_logits=True, name="t")
    config = json.loads(json.dumps(loss.get_config()))
    clone = TaylorGLO.from_config(config)
    assert clone.get_config() == loss.get_config()
    assert set(config) == {"name", "reduction", "dtype", "from_logits", "theta"}


@pytest.mark.parametrize("alpha", [0.0, 0.1, 0.35])
def test_with_label_smoothing_equals_the_loss_on_smoothed_labels(alpha):
    """Regularization paper, App. D.2: x → (1-α)x + α/n stays inside the family."""
    rng = np.random.default_rng(7)
    n = 5
    theta = random_theta(rng)
    x = np.eye(n)[rng.integers(0, n, size=9)]
    y = rng.dirichlet(np.ones(n), size=9)
    smoothed = (1 - alpha) * x + alpha / n
    # The NumPy polynomial of the reference code, on the smoothed labels.
    expected = reference_code_loss(TaylorGLO(theta).to_reference_code(), smoothed, y)
    mapped = TaylorGLO(theta, reduction="none", dtype="float64").with_label_smoothing(alpha, n)
    np.testing.assert_allclose(mapped(x, y), expected, rtol=1e-10, atol=1e-12)
    assert (mapped.reduction, mapped.from_logits) == ("none", False)


def test_label_smoothed_mse_theta_is_keras_mse_on_smoothed_labels_less_a_constant():
    alpha, n = 0.2, 4
    rng = np.random.default_rng(8)
    x = np.eye(n)[rng.integers(0, n, size=6)]
    y = rng.dirichlet(np.ones(n), size=6)
    smoothed = (1 - alpha) * x + alpha / n
    keras_mse = keras.losses.MeanSquaredError(reduction="none", dtype="float64")(smoothed, y)
    mapped = TaylorGLO(MSE_THETA, reduction="none", dtype="float64").with_label_smoothing(alpha, n)
    constant = (smoothed**2).mean(axis=-1)
    np.testing.assert_allclose(mapped(x, y), np.asarray(keras_mse) - constant, rtol=1e-6)


@pytest.mark.parametrize(
    ("arguments", "name"), [((1.0, 10), "alpha"), ((-0.1, 10), "alpha"), ((0.1, 1), "num_classes")]
)
def test_with_label_smoothing_rejects_bad_arguments(arguments, name):
    with pytest.raises(ValueError, match=f"argument `{name}`"):
        TaylorGLO(MSE_THETA).with_label_smoothing(*arguments)
