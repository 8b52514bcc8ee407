"""The empirical NTK against a per-sample reference, a closed form and its own invariants.

The vectorised method is checked against the per-sample loop (an independent computation: one eager
gradient per sample and class, Gram matrix in NumPy), the linear model against its hand-derived
kernel, and the spectral helpers against 2x2 matrices whose eigenvalues are known by hand.
"""

from __future__ import annotations

import gc
import math
import weakref

import keras
import numpy as np
import pytest
import tensorflow as tf

import metaloss.models
from metaloss.analysis.ntk import condition_number, eigenvalues, empirical_ntk, ntk_summary

N, FEATURES, CLASSES = 7, 6, 3


@pytest.fixture(scope="module")
def mlp():
    keras.utils.set_random_seed(0)
    return metaloss.models.get("mlp", (FEATURES,), CLASSES, hidden=(5, 4), activation="tanh")


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(3).normal(size=(N, FEATURES)).astype("float32")


def linear_model(features: int, classes: int) -> keras.Model:
    """``f(x) = W x + b`` in float64."""
    inputs = keras.Input((features,), dtype="float64")
    outputs = keras.layers.Dense(classes, dtype="float64", kernel_initializer="random_normal")(
        inputs
    )
    return keras.Model(inputs, outputs)


def assert_kernels_close(actual, expected, rtol=1e-5):
    """Equal up to float32 round-off, relative to the kernel's scale."""
    np.testing.assert_allclose(actual, expected, rtol=0, atol=rtol * np.abs(expected).max())


@pytest.mark.parametrize("trace_classes", [True, False])
def test_vectorised_matches_the_per_sample_loop(mlp, x, trace_classes):
    kernel = empirical_ntk(mlp, x, trace_classes=trace_classes)
    reference = empirical_ntk(mlp, x, trace_classes=trace_classes, method="loop")
    size = N if trace_classes else N * CLASSES
    assert kernel.shape == reference.shape == (size, size)
    assert kernel.dtype == reference.dtype == np.float64
    assert_kernels_close(kernel, reference)


def test_full_kernel_traced_over_classes_is_the_traced_kernel(mlp, x):
    full = empirical_ntk(mlp, x, trace_classes=False)
    # Rows and columns are sample-major (i·C + c): split them into (sample, class) and trace.
    traced = full.reshape(N, CLASSES, N, CLASSES).trace(axis1=1, axis2=3)
    assert_kernels_close(traced, empirical_ntk(mlp, x))


@pytest.mark.parametrize("method", ["jacobian", "loop"])
def test_linear_model_has_the_closed_form_kernel(method):
    # f_c(x) = Σ_k W[k, c] x_k + b_c, so ∂f_c/∂W[k, d] = x_k δ_cd and ∂f_c/∂b_d = δ_cd:
    # Θ[(i, c), (j, d)] = δ_cd (x_i·x_j + 1), and tracing over the C classes gives C (x_i·x_j + 1).
    features, classes = 4, 3
    inputs = np.random.default_rng(5).normal(size=(5, features))
    gram = inputs @ inputs.T + 1.0
    model = linear_model(features, classes)
    traced = empirical_ntk(model, inputs, method=method)
    full = empirical_ntk(model, inputs, trace_classes=False, method=method)
    np.testing.assert_allclose(traced, classes * gram, rtol=1e-12)
    np.testing.assert_allclose(full, np.kron(gram, np.eye(classes)), rtol=1e-12, atol=1e-12)


def test_hand_computed_linear_kernel():
    # x1 = e1, x2 = e2 with C = 2: K = 2·[[1 + 1, 0 + 1], [0 + 1, 1 + 1]] = [[4, 2], [2, 4]].
    kernel = empirical_ntk(linear_model(3, 2), [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    np.testing.assert_allclose(kernel, [[4.0, 2.0], [2.0, 4.0]], rtol=1e-12)


@pytest.mark.parametrize("trace_classes", [True, False])
def test_kernel_is_symmetric_positive_semidefinite(mlp, x, trace_classes):
    kernel = empirical_ntk(mlp, x, trace_classes=trace_classes, chunk_size=3)
    np.testing.assert_array_equal(kernel, kernel.T)
    values = eigenvalues(kernel)
    assert values[0] > 0
    assert values[-1] >= -1e-6 * values[0]


@pytest.mark.parametrize("trace_classes", [True, False])
def test_chunking_does_not_change_the_kernel(mlp, x, trace_classes):
    # N = 7: chunks of 3 (3 + 3 + 1) and 4 (4 + 3) do not divide N; 1 and N are the extremes.
    whole = empirical_ntk(mlp, x, trace_classes=trace_classes, chunk_size=N)
    for chunk_size in (1, 3, 4, 100, None):
        kernel = empirical_ntk(mlp, x, trace_classes=trace_classes, chunk_size=chunk_size)
        assert_kernels_close(kernel, whole, rtol=1e-6)


def test_tensor_input_and_sample_order(mlp, x):
    # Each sample is fed alone, so permuting the inputs permutes the kernel.
    order = np.random.default_rng(0).permutation(N)
    kernel = empirical_ntk(mlp, tf.constant(x[order]), chunk_size=3)
    assert_kernels_close(kernel, empirical_ntk(mlp, x)[np.ix_(order, order)], rtol=1e-6)


def test_conv_model_matches_the_loop():
    model = metaloss.models.get("cnn1d", (40, 1), 10)
    inputs = np.random.default_rng(1).normal(size=(3, 40, 1)).astype("float32")
    kernel = empirical_ntk(model, inputs, chunk_size=2)
    assert kernel.shape == (3, 3)
    assert_kernels_close(kernel, empirical_ntk(model, inputs, method="loop"))


def test_compiled_functions_do_not_keep_the_model_alive(x):
    model = metaloss.models.get("mlp", (FEATURES,), CLASSES, hidden=(3,))
    empirical_ntk(model, x[:2])
    reference = weakref.ref(model)
    del model
    gc.collect()
    assert reference() is None


def test_eigenvalues_and_condition_number_of_2x2_matrices():
    # [[2, 1], [1, 2]] has eigenvectors (1, 1) and (1, -1) with eigenvalues 3 and 1.
    np.testing.assert_allclose(eigenvalues([[2.0, 1.0], [1.0, 2.0]]), [3.0, 1.0])
    assert condition_number([[2.0, 1.0], [1.0, 2.0]]) == pytest.approx(3.0)
    # A diagonal matrix: its entries, sorted descending.
    np.testing.assert_allclose(eigenvalues(np.diag([1.0, 4.0])), [4.0, 1.0])
    assert condition_number(np.diag([1.0, 4.0])) == pytest.approx(4.0)
    # [[1, 1], [1, 1]] has eigenvalues 2 and 0 (singular); [[1, 2], [2, 1]] has 3 and -1.
    assert condition_number([[1.0, 1.0], [1.0, 1.0]]) == math.inf
    assert condition_number([[1.0, 2.0], [2.0, 1.0]]) == math.inf
    assert condition_number(np.zeros((2, 2))) == math.inf


def test_summary():
    summary = ntk_summary([[2.0, 1.0], [1.0, 2.0]])
    assert summary == pytest.approx(
        {"size": 2, "trace": 4.0, "lambda_max": 3.0, "lambda_min": 1.0, "condition_number": 3.0}
    )
    assert isinstance(summary["size"], int)
    assert all(isinstance(value, float) for key, value in summary.items() if key != "size")


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"x": np.zeros((0, FEATURES))}, "x"),
        ({"x": np.zeros((2, FEATURES + 1))}, "x"),
        ({"x": np.zeros(FEATURES)}, "x"),
        ({"x": np.zeros((2, 1, FEATURES))}, "x"),
        ({"x": np.full((2, FEATURES), np.nan)}, "x"),
        ({"x": [["a"] * FEATURES]}, "x"),
        ({"chunk_size": 0}, "chunk_size"),
        ({"chunk_size": -2}, "chunk_size"),
        ({"chunk_size": 2.5}, "chunk_size"),
        ({"chunk_size": True}, "chunk_size"),
        ({"method": "pfor"}, "method"),
        ({"trace_classes": "yes"}, "trace_classes"),
    ],
)
def test_invalid_arguments_raise(mlp, x, kwargs, argument):
    kwargs = {"x": x, **kwargs}
    with pytest.raises(ValueError, match=f"Invalid value for argument `{argument}`"):
        empirical_ntk(mlp, **kwargs)


def test_invalid_models_raise():
    inputs = keras.Input((FEATURES,))
    no_weights = keras.Model(inputs, keras.layers.Activation("relu")(inputs))
    with pytest.raises(ValueError, match="Invalid value for argument `model`"):
        empirical_ntk(no_weights, np.ones((2, FEATURES)))
    sequence = keras.Model(inputs, keras.layers.Reshape((3, 2))(keras.layers.Dense(6)(inputs)))
    with pytest.raises(ValueError, match="logits of shape"):
        empirical_ntk(sequence, np.ones((2, FEATURES)))


@pytest.mark.parametrize(
    "kernel",
    [np.zeros((0, 0)), np.ones((2, 3)), np.ones(3), [[1.0, 2.0], [0.0, 1.0]], [[np.inf]]],
)
def test_invalid_kernels_raise(kernel):
    for function in (eigenvalues, condition_number, ntk_summary):
        with pytest.raises(ValueError, match="Invalid value for argument `kernel`"):
            function(kernel)
