"""TaylorGLO's closed-form γ coefficients and invariant against autodiff of the loss itself."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from metaloss.analysis.decomposition import taylor_glo_coefficients, taylor_glo_invariant
from metaloss.losses import taylor_glo

RNG = np.random.default_rng(7)
THETAS = [RNG.normal(0.0, 1.5, size=8) for _ in range(5)]


def autodiff_gamma(theta, x, y):
    """γ_k = ∂f/∂y_k with L = -(1/n) Σ_k f: so γ = -n ∂L/∂y, by TensorFlow's autodiff."""
    y = tf.Variable(np.asarray(y, dtype=np.float64)[None, :])
    with tf.GradientTape() as tape:
        loss = taylor_glo(np.asarray(x, dtype=np.float64)[None, :], y, theta)
    return -y.shape[-1] * tape.gradient(loss, y).numpy()[0]


@pytest.mark.parametrize("theta", THETAS)
def test_coefficients_give_the_autodiff_gradient(theta):
    x = np.array([0.0, 1.0, 0.0, 0.0])
    y = np.array([0.1, 0.5, 0.3, 0.1])
    expected = autodiff_gamma(theta, x, y)
    np.testing.assert_allclose(taylor_glo_coefficients(theta).gamma(x, y), expected, rtol=1e-9)


def test_mse_hand_values():
    # θ3 = -2, θ5 = 2 is -(x - y)² up to a constant: γ = 2(x - y).
    c = taylor_glo_coefficients([0, 0, 0, -2, 0, 2, 0, 0])
    assert (c.c1, c.c_y, c.c_h, c.c_yy, c.c_hh, c.c_hy) == (0, 2, -2, 0, 0, 0)


@pytest.mark.parametrize("theta", [*THETAS, [0, 0, 0, -2, 0, 2, 0, 0], [0, 0, 1, 0, 0, 0, 0, 0]])
@pytest.mark.parametrize("n", [2, 3, 10])
def test_invariant_is_the_null_epoch_pull_against_push(theta, n):
    # At the null epoch every output is 1/n: the target's γ against n-1 non-targets' γ.
    y = np.full(n, 1.0 / n)
    x = np.eye(n)[0]
    gamma = autodiff_gamma(theta, x, y)
    assert taylor_glo_invariant(theta, n) == bool(gamma[0] >= (n - 1) * gamma[1] - 1e-12)


def test_bad_arguments():
    with pytest.raises(ValueError, match="argument `theta`"):
        taylor_glo_coefficients([1.0, 2.0])
    with pytest.raises(ValueError, match="argument `num_classes`"):
        taylor_glo_invariant([0.0] * 8, 1)
