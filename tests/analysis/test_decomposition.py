"""γ coefficients and the null-epoch invariants against independent computations.

Closed forms are checked against TensorFlow autodiff of the zoo's own losses and against central
finite differences in NumPy; the invariants against hand values and against each other.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from metaloss.analysis.decomposition import (
    gamma,
    gamma_baikal,
    gamma_cross_entropy,
    gamma_mse,
    gamma_taylor_glo,
    invariant,
    taylor_glo_coefficients,
    taylorglo_invariant,
)
from metaloss.losses import REFERENCE_CODE_EXAMPLE, Baikal, TaylorGLO, taylor_glo

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
    check = taylorglo_invariant(theta, n)
    assert check.holds == bool(gamma[0] >= (n - 1) * gamma[1] - 1e-12)
    np.testing.assert_allclose(check.margin, gamma[0] - (n - 1) * gamma[1], rtol=1e-9, atol=1e-9)


def test_bad_arguments():
    with pytest.raises(ValueError, match="argument `theta`"):
        taylor_glo_coefficients([1.0, 2.0])
    with pytest.raises(ValueError, match="argument `num_classes`"):
        taylorglo_invariant([0.0] * 8, 1)


# -- γ of any loss by autodiff, against the closed forms -------------------------------------


def random_points(n_samples=6, n_classes=4, seed=3):
    """One-hot labels and probabilities on the simplex (Dirichlet), away from 0."""
    rng = np.random.default_rng(seed)
    x = np.eye(n_classes)[rng.integers(0, n_classes, n_samples)]
    y = rng.dirichlet(np.full(n_classes, 2.0), n_samples) * 0.9 + 0.1 / n_classes
    return x, y


def central_differences(f, x, y, h=1e-6):
    """γ = -n ∂L/∂y by central differences of a NumPy per-sample loss L(x, y) -> (N,)."""
    out = np.zeros_like(y)
    for k in range(y.shape[1]):
        step = np.zeros_like(y)
        step[:, k] = h
        out[:, k] = (f(x, y + step) - f(x, y - step)) / (2 * h)
    return -y.shape[1] * out


def test_closed_forms_match_numpy_finite_differences():
    x, y = random_points()
    n = y.shape[1]
    # The paper's per-sample losses L = -(1/n) Σ f, written out in NumPy.
    cross_entropy = lambda x, y: -np.mean(x * np.log(y), axis=1)  # noqa: E731
    mse = lambda x, y: np.mean((x - y) ** 2, axis=1)  # noqa: E731
    baikal = lambda x, y: -np.mean(np.log(y) - x / y, axis=1)  # noqa: E731
    np.testing.assert_allclose(
        gamma_cross_entropy(x, y), central_differences(cross_entropy, x, y), rtol=1e-6
    )
    np.testing.assert_allclose(
        gamma_mse(x, y), central_differences(mse, x, y), rtol=1e-6, atol=1e-8
    )
    np.testing.assert_allclose(gamma_baikal(x, y), central_differences(baikal, x, y), rtol=1e-6)
    assert n == 4


@pytest.mark.parametrize(
    ("loss", "closed_form"),
    [
        (keras.losses.MeanSquaredError(), gamma_mse),
        (Baikal(), gamma_baikal),
        (Baikal(from_logits=True), gamma_baikal),  # rebuilt to read probabilities
        ("baikal", gamma_baikal),
    ],
)
def test_autodiff_gamma_matches_closed_forms(loss, closed_form):
    x, y = random_points()
    np.testing.assert_allclose(gamma(loss, x, y), closed_form(x, y), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("theta", THETAS)
def test_autodiff_gamma_of_the_taylor_glo_loss_matches_its_polynomial(theta):
    x, y = random_points()
    expected = gamma_taylor_glo(theta, x, y)
    np.testing.assert_allclose(gamma(TaylorGLO(theta), x, y), expected, rtol=1e-8, atol=1e-8)


def test_keras_cross_entropy_is_n_times_the_paper_rule_up_to_a_class_constant():
    # Keras sums over classes (factor n) and divides y by Σy first: ∂/∂y_k adds Σx/Σy = 1.
    x, y = random_points()
    n = y.shape[1]
    autodiff = gamma(keras.losses.CategoricalCrossentropy(), x, y)
    np.testing.assert_allclose(autodiff, n * gamma_cross_entropy(x, y) - n, rtol=1e-9)
    # A class-constant shift of γ changes nothing under softmax: the logit update
    # Δz = J_softmaxᵀ γ, with J = diag(y) - y yᵀ, is the same for both rules.
    for row in range(len(y)):
        jacobian = np.diag(y[row]) - np.outer(y[row], y[row])
        np.testing.assert_allclose(
            jacobian.T @ autodiff[row], jacobian.T @ (n * gamma_cross_entropy(x, y)[row]), atol=1e-9
        )


def test_gamma_accepts_one_row_and_rejects_bad_input():
    assert gamma("mse", [0.0, 1.0], [0.25, 0.75]).shape == (1, 2)
    with pytest.raises(ValueError, match="argument `y`"):
        gamma("mse", [[0.0, 1.0]], [[0.5, 0.5, 0.0]])
    with pytest.raises(ValueError, match="argument `y`"):
        gamma("baikal", [[0.0, 1.0]], [[0.0, 1.0]])
    with pytest.raises(ValueError, match="argument `loss`"):
        gamma("no_such_loss", [[0.0, 1.0]], [[0.5, 0.5]])


# -- the loss-agnostic null-epoch check ------------------------------------------------------


def test_invariant_hand_values():
    # Baikal, γ = 1/y + x/y² at y = 1/10: target 10 + 100, non-target 10.
    check = invariant("baikal", 10)
    np.testing.assert_allclose([check.gamma_target, check.gamma_non_target], [110.0, 10.0])
    np.testing.assert_allclose([check.coded_margin, check.softmax_margin], [110 - 90, 100.0])
    # MSE, γ = 2(x - y) at y = 1/4: target 1.5, non-target -0.5.
    check = invariant("mse", 4)
    np.testing.assert_allclose([check.gamma_target, check.gamma_non_target], [1.5, -0.5])
    assert check.coded_rule and check.softmax_rule


@pytest.mark.parametrize("theta", THETAS)
@pytest.mark.parametrize("n", [3, 10])
def test_autodiff_invariant_of_a_taylor_glo_loss_equals_the_closed_form(theta, n):
    closed = taylorglo_invariant(theta, n)
    check = invariant(TaylorGLO(theta, from_logits=True), n)
    np.testing.assert_allclose(check.coded_margin, closed.margin, rtol=1e-8, atol=1e-8)
    assert check.coded_rule == closed.holds


def test_the_softmax_condition_is_weaker_than_the_coded_rule():
    # The loss shipped with the reference code fails the coded rule at 10 classes but still
    # raises the target's logit at the null epoch: γ_target > γ_non-target.
    check = invariant(TaylorGLO.from_reference_code(REFERENCE_CODE_EXAMPLE), 10)
    assert not check.coded_rule and check.softmax_rule
    # Shifting γ by a class constant c (θ2 adds to c1) moves the coded margin by c - (n-1)c,
    # not the softmax one.
    theta = np.array(THETAS[0])
    shifted = theta + np.array([0, 0, 5.0, 0, 0, 0, 0, 0])
    a, b = invariant(TaylorGLO(theta), 10), invariant(TaylorGLO(shifted), 10)
    np.testing.assert_allclose(b.softmax_margin, a.softmax_margin, rtol=1e-9)
    np.testing.assert_allclose(b.coded_margin - a.coded_margin, 5.0 - (10 - 1) * 5.0, rtol=1e-9)
