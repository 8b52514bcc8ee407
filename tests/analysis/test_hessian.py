"""Hessian products, eigenvalues, trace and density against a dense Hessian built independently.

The reference Hessian is the Jacobian of the gradient (reverse over reverse, by
``GradientTape.jacobian``) of a loss written out here from per-sample functions, in float64: it
shares no code with the products under test. Each operator compiles its product once, so the
tests share operators where they can.
"""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from metaloss.analysis.hessian import (
    DensityResult,
    HessianOperator,
    dense_hessian,
    density,
    top_eigenvalues,
    trace,
)
from metaloss.losses import CyclicClassEmphasis, cyclic_class_emphasis, cyclic_weights

L2 = 0.05  # on the kernels: part of the loss, and it lifts the spectrum for power iteration
P = 38  # 3·5 + 5 + 5·3 + 3 parameters


def tiny_network(regularizer=True):
    """3 → 5 (tanh) → 3 logits in float64."""
    keras.utils.set_random_seed(3)
    reg = keras.regularizers.L2(L2) if regularizer else None
    inputs = keras.Input((3,), dtype="float64")
    hidden = keras.layers.Dense(5, "tanh", dtype="float64", kernel_regularizer=reg)(inputs)
    outputs = keras.layers.Dense(3, dtype="float64", kernel_regularizer=reg)(hidden)
    return keras.Model(inputs, outputs)


def tiny_data(n=30):
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, 3)), rng.integers(0, 3, n)


def cross_entropy(**kwargs):
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True, dtype="float64", **kwargs)


def sparse_ce(y, logits):
    return keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True)


def reference_hessian(model, per_sample, x, y, regularization=True):
    """∇² [mean_s per_sample(y_s, f(x_s)) + Σ model.losses], by a Jacobian of the gradient."""
    variables = model.trainable_variables
    with tf.GradientTape(persistent=True) as outer:
        with tf.GradientTape() as inner:
            value = tf.reduce_mean(per_sample(y, model(x, training=False)))
            if regularization and model.losses:
                value += tf.add_n(model.losses)
        flat = tf.concat([tf.reshape(g, [-1]) for g in inner.gradient(value, variables)], 0)
    blocks = outer.jacobian(flat, variables, experimental_use_pfor=False)
    return np.concatenate([tf.reshape(b, [flat.shape[0], -1]).numpy() for b in blocks], axis=1)


def off_diagonal_square_sum(matrix):
    return np.sum(matrix**2) - np.sum(np.diag(matrix) ** 2)


@pytest.fixture(scope="module")
def problem():
    model = tiny_network()
    x, y = tiny_data()
    hessian = reference_hessian(model, sparse_ce, x, y)
    operators = {
        hvp: HessianOperator(model, cross_entropy(), (x, y), hvp=hvp)
        for hvp in ("forward_over_reverse", "reverse_over_reverse")
    }
    return model, (x, y), hessian, np.linalg.eigvalsh(hessian)[::-1], operators


def test_reference_is_symmetric_and_indefinite(problem):
    _, _, hessian, eigenvalues, _ = problem
    assert hessian.shape == (P, P)
    np.testing.assert_allclose(hessian, hessian.T, atol=1e-12)
    np.testing.assert_allclose(np.sum(eigenvalues), np.trace(hessian), rtol=1e-12)
    assert eigenvalues[0] > 0 > eigenvalues[-1]


def test_both_products_match_the_reference_and_each_other(problem):
    _, _, hessian, _, operators = problem
    dense = {}
    for hvp, operator in operators.items():
        start = operator.products
        dense[hvp] = np.stack([operator.matvec(e) for e in np.eye(P)], axis=1)
        assert operator.num_parameters == P and operator.products == start + P
        np.testing.assert_allclose(dense[hvp], hessian, rtol=1e-9, atol=1e-12)
    forward, reverse = dense.values()
    np.testing.assert_allclose(forward, reverse, rtol=1e-10, atol=1e-13)


def test_dense_hessian(problem):
    model, data, hessian, _, _ = problem
    np.testing.assert_allclose(dense_hessian(model, cross_entropy(), data), hessian, atol=1e-12)
    with pytest.raises(ValueError, match="argument `model`"):
        dense_hessian(model, cross_entropy(), data, max_parameters=10)


def test_batches_are_weighted_by_their_size(problem):
    # 30 samples in batches of 7 (the last holds 2) or 15: the mean over samples, not batches.
    model, (x, y), hessian, _, _ = problem
    v = np.random.default_rng(2).standard_normal(P)
    batched = HessianOperator(model, cross_entropy(), (x, y), batch_size=7)
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(15)
    streamed = HessianOperator(model, cross_entropy(), dataset, hvp="reverse_over_reverse")
    for operator in (batched, streamed):
        np.testing.assert_allclose(operator.matvec(v), hessian @ v, rtol=1e-9, atol=1e-12)
    with tf.GradientTape() as tape:
        value = tf.reduce_mean(sparse_ce(y, model(x))) + tf.add_n(model.losses)
    expected = np.concatenate([g.numpy().ravel() for g in tape.gradient(value, model.weights)])
    np.testing.assert_allclose(batched.gradient(), expected, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize(
    "loss",
    [
        cross_entropy(reduction="sum"),  # divided by the batch size here
        cross_entropy(reduction=None),  # per-sample values, averaged
        sparse_ce,  # a plain per-sample callable
    ],
    ids=["sum", "none", "callable"],
)
def test_every_loss_form_is_the_mean_over_samples(problem, loss):
    model, data, hessian, _, _ = problem
    v = np.random.default_rng(3).standard_normal(P)
    operator = HessianOperator(model, loss, data)
    np.testing.assert_allclose(operator.matvec(v), hessian @ v, rtol=1e-9, atol=1e-12)


def test_regularization_can_be_left_out(problem):
    model, (x, y), hessian, _, _ = problem
    operator = HessianOperator(model, cross_entropy(), (x, y), include_regularization=False)
    plain = np.stack([operator.matvec(e) for e in np.eye(P)], axis=1)
    np.testing.assert_allclose(plain, reference_hessian(model, sparse_ce, x, y, False), atol=1e-12)
    # L2·Σw² adds 2·L2 to the diagonal at the kernel entries (3·5 and 5·3), none at the biases.
    kernels = np.concatenate([np.full(n, k) for n, k in ((15, 1.0), (5, 0.0), (15, 1.0), (3, 0.0))])
    np.testing.assert_allclose(hessian - plain, np.diag(2 * L2 * kernels), atol=1e-12)


@pytest.mark.parametrize(
    ("method", "tol", "max_iterations"), [("lanczos", 1e-6, 100), ("power", 1e-9, 400)]
)
def test_top_eigenvalues_match_the_dense_spectrum(problem, method, tol, max_iterations):
    _, _, hessian, eigenvalues, operators = problem
    result = operators["forward_over_reverse"].top_eigenvalues(
        5, method, tol=tol, max_iterations=max_iterations, return_eigenvectors=True
    )
    assert result.converged and result.method == method
    np.testing.assert_allclose(result.eigenvalues, eigenvalues[:5], rtol=1e-4)
    vectors = result.eigenvectors
    assert vectors.shape == (P, 5)
    np.testing.assert_allclose(vectors.T @ vectors, np.eye(5), atol=1e-6)
    residual = np.linalg.norm(hessian @ vectors - vectors * result.eigenvalues, axis=0)
    assert np.all(residual < 1e-2 * eigenvalues[0])


def test_lanczos_needs_far_fewer_products_than_power_iteration(problem):
    _, _, _, eigenvalues, operators = problem
    operator = operators["reverse_over_reverse"]
    counts = {}
    for method in ("lanczos", "power"):
        result = operator.top_eigenvalues(5, method, tol=1e-4)
        np.testing.assert_allclose(result.eigenvalues, eigenvalues[:5], rtol=1e-2)
        counts[method] = result.hessian_vector_products
    # Measured: 21 against 113 products. Lanczos can never need more than P.
    assert counts["lanczos"] <= P and 3 * counts["lanczos"] < counts["power"]


def test_the_public_functions(problem):
    model, data, _, eigenvalues, _ = problem
    result = top_eigenvalues(model, cross_entropy(), data, k=2, hvp="reverse_over_reverse")
    np.testing.assert_allclose(result.eigenvalues, eigenvalues[:2], rtol=1e-4)
    assert result.eigenvectors is None and 2 <= result.hessian_vector_products <= P
    estimate = trace(model, cross_entropy(), data, samples=3)
    assert estimate.method == "hutchinson" and estimate.hessian_vector_products == 3
    spectrum = density(model, cross_entropy(), data, runs=2, steps=4)
    assert spectrum.nodes.shape == (8,) and spectrum.hessian_vector_products == 8
    json.dumps(estimate.__dict__)


def test_repeated_and_negative_eigenvalues():
    # Negated MSE of a linear map 3 → 2: H = -(XᵀX/N) ⊗ I₂ (X with a column of ones for the
    # bias) is negative definite with every eigenvalue twice. Power iteration must shift (its
    # dominant value is the most negative one) and Lanczos must restart to see the 2nd copies.
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((3,), dtype="float64"), keras.layers.Dense(2, dtype="float64")]
    )
    x = np.random.default_rng(5).standard_normal((20, 3)) * [1.0, 2.0, 3.0] + 1.0
    y = np.zeros((20, 2))

    def negative_mse(y_true, y_pred):
        return -tf.reduce_mean(tf.square(y_pred - y_true), axis=-1)

    expected = np.linalg.eigvalsh(reference_hessian(model, negative_mse, x, y))[::-1]
    assert expected[0] < 0 and np.isclose(expected[0], expected[1])
    operator = HessianOperator(model, negative_mse, (x, y))
    for method in ("lanczos", "power"):
        result = operator.top_eigenvalues(4, method, tol=1e-10, max_iterations=500)
        np.testing.assert_allclose(result.eigenvalues, expected[:4], rtol=1e-6)


def test_trace_exact_and_hutchinson(problem):
    _, _, hessian, _, operators = problem
    operator = operators["forward_over_reverse"]
    exact = operator.trace(method="exact")
    np.testing.assert_allclose(exact.trace, np.trace(hessian), rtol=1e-9)
    assert (exact.standard_error, exact.hessian_vector_products) == (0.0, P)
    # Rademacher probes: Var(vᵀHv) = 2 Σ_{i≠j} H_ij², exactly.
    samples = 200
    sd = np.sqrt(2 * off_diagonal_square_sum(hessian) / samples)
    estimate = operator.trace(samples, seed=4)
    assert estimate.hessian_vector_products == samples
    assert abs(estimate.trace - np.trace(hessian)) < 4 * sd
    assert 0.5 * sd < estimate.standard_error < 2 * sd


def test_density_integrates_to_one_and_its_mean_is_trace_over_p(problem):
    _, _, hessian, _, operators = problem
    runs = 20
    result = operators["forward_over_reverse"].density(runs, 8, seed=5)
    assert result.nodes.shape == result.weights.shape == (runs * 8,)
    assert result.runs == runs and result.hessian_vector_products == runs * 8
    np.testing.assert_allclose(result.weights.sum(), 1.0, rtol=1e-12)
    assert np.all(result.weights >= 0)
    grid = np.linspace(result.nodes.min() - 1.0, result.nodes.max() + 1.0, 4001)
    np.testing.assert_allclose(np.trapezoid(result.curve(grid, 0.02), grid), 1.0, rtol=1e-6)
    # Each run's Σ w θ is qᵀHq for its unit Rademacher q: Var = 2 Σ_{i≠j} H_ij² / P².
    sd = np.sqrt(2 * off_diagonal_square_sum(hessian) / runs) / P
    assert abs(result.mean - np.trace(hessian) / P) < 4 * sd


def test_full_lanczos_density_has_one_node_per_distinct_eigenvalue(problem):
    # The spectrum holds 2·L2 five times (output kernel moves that shift all logits alike)
    # and 0 once (the same for the output bias): 38 - 4 = 34 distinct eigenvalues, and a
    # Krylov space sees each once, so the run stops there, exactly.
    _, _, _, eigenvalues, operators = problem
    distinct = eigenvalues[np.append(True, np.diff(eigenvalues) < -1e-9)]
    result = operators["forward_over_reverse"].density(steps=100)
    assert len(distinct) == 34 and result.hessian_vector_products == 34
    np.testing.assert_allclose(np.sort(result.nodes)[::-1], distinct, atol=1e-9)


def test_dynamical_loss_is_read_at_its_current_step():
    model = tiny_network(regularizer=False)
    x, y = tiny_data()
    loss = CyclicClassEmphasis(3, period=10, amplitude=3, from_logits=True, dtype="float64")
    operator = HessianOperator(model, loss, (x, y))
    hessians = {}
    for step in (0, 5):
        loss.step.assign(step)
        weights = cyclic_weights(step, 3, period=10, amplitude=3)  # Γ = (1,1,1), (1.8,.6,.6)

        def per_sample(y_true, logits, weights=weights):
            return cyclic_class_emphasis(y_true, logits, weights, from_logits=True)

        hessians[step] = np.stack([operator.matvec(e) for e in np.eye(P)], axis=1)
        expected = reference_hessian(model, per_sample, x, y)
        np.testing.assert_allclose(hessians[step], expected, rtol=1e-9, atol=1e-12)
    assert not np.allclose(hessians[0], hessians[5], atol=1e-3)
    loss.step.assign(0)
    v = np.random.default_rng(7).standard_normal(P)
    np.testing.assert_allclose(operator.matvec(v), hessians[0] @ v, rtol=1e-9, atol=1e-12)
    assert operator._product.experimental_get_tracing_count() == 1  # the step is not baked in


def test_float32_model_products_agree():
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(4, "tanh"), keras.layers.Dense(3)]
    )
    x, y = tiny_data()
    dataset = tf.data.Dataset.from_tensor_slices((x.astype("float32"), y)).batch(15)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    v = np.random.default_rng(6).standard_normal(31)
    forward = HessianOperator(model, loss, dataset).matvec(v)
    reverse = HessianOperator(model, loss, dataset, hvp="reverse_over_reverse").matvec(v)
    assert forward.dtype == np.float64
    np.testing.assert_allclose(forward, reverse, rtol=1e-4, atol=1e-5)


def test_bad_arguments_are_value_errors(problem):
    model, (x, y), _, _, _ = problem
    loss = cross_entropy()
    bad_data = [
        x,
        (x, y[:-1]),
        (x[:0], y[:0]),
        (x, y, y),
        tf.data.Dataset.from_tensor_slices((x, y)),  # not batched
        tf.data.Dataset.from_tensor_slices((x, y)).batch(8).repeat(),
        tf.data.Dataset.from_tensor_slices((x, y, y)).batch(8),
    ]
    for data in bad_data:
        with pytest.raises(ValueError, match="argument `data`"):
            HessianOperator(model, loss, data)
    empty = tf.data.Dataset.from_tensor_slices((x, y)).batch(8).take(0)
    with pytest.raises(ValueError, match="argument `data`"):
        HessianOperator(model, loss, empty).gradient()
    spectrum = DensityResult(np.zeros(1), np.ones(1), 1, 1)
    cases = [
        (lambda: HessianOperator(model, loss, (x, y), hvp="finite"), "hvp"),
        (lambda: HessianOperator(model, "ce", (x, y)), "loss"),
        (lambda: HessianOperator("model", loss, (x, y)), "model"),
        (lambda: HessianOperator(model, loss, (x, y), batch_size=0), "batch_size"),
        (lambda: HessianOperator(model, loss, (x, y)).matvec(np.ones(3)), "vector"),
        (lambda: top_eigenvalues(model, loss, (x, y), k=P + 1), "k"),
        (lambda: top_eigenvalues(model, loss, (x, y), method="arnoldi"), "method"),
        (lambda: top_eigenvalues(model, loss, (x, y), tol=0), "tol"),
        (lambda: trace(model, loss, (x, y), samples=1), "samples"),
        (lambda: trace(model, loss, (x, y), method="girard"), "method"),
        (lambda: density(model, loss, (x, y), runs=0), "runs"),
        (lambda: spectrum.curve([0.0], sigma=0), "sigma"),
    ]
    for make, argument in cases:
        with pytest.raises(ValueError, match=f"argument `{argument}`"):
            make()
