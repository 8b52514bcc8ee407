"""Tests of `metaloss.models.mlp`."""

import keras
import numpy as np
import pytest

from metaloss.models.mlp import build_mlp


@pytest.mark.parametrize("input_shape", [(40,), (2,), (8, 8, 1), (28, 28, 1), (32, 32, 3)])
def test_builds_on_any_input_shape(input_shape):
    model = build_mlp(input_shape, 10)
    x = np.random.default_rng(0).uniform(size=(2, *input_shape)).astype("float32")
    logits = keras.ops.convert_to_numpy(model(x, training=False))
    assert model.name == "mlp"
    assert logits.shape == (2, 10)
    assert logits.dtype == np.float32
    assert (logits < 0).any()


def test_parameter_count_matches_hand_computation():
    # 40 -> 128 -> 128 -> 10 with biases: (40*128 + 128) + (128*128 + 128) + (128*10 + 10)
    # = 5,248 + 16,512 + 1,290 = 23,050.
    assert build_mlp((40,), 10).count_params() == 23_050
    # No hidden layer: multinomial logistic regression, 40*10 + 10 = 410 parameters.
    assert build_mlp((40,), 10, hidden=()).count_params() == 410


def test_last_layer_has_no_softmax():
    model = build_mlp((2,), 3)
    assert model.layers[-1].activation is keras.activations.linear


def test_hidden_activation_and_dropout():
    model = build_mlp((40,), 10, hidden=(64, 32, 16), activation="tanh", dropout=0.5)
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert [layer.units for layer in dense] == [64, 32, 16, 10]
    assert all(layer.activation is keras.activations.tanh for layer in dense[:-1])
    dropout = [layer for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    assert [layer.rate for layer in dropout] == [0.5, 0.5, 0.5]
    # Dropout is off at inference: two calls agree.
    x = np.ones((2, 40), dtype="float32")
    np.testing.assert_array_equal(model(x, training=False), model(x, training=False))


def test_no_dropout_layers_by_default():
    assert not any(isinstance(layer, keras.layers.Dropout) for layer in build_mlp((40,), 10).layers)


@pytest.mark.parametrize(
    ("argument", "value"),
    [
        ("hidden", (128, 0)),
        ("hidden", 128),
        ("hidden", (12.5,)),
        ("dropout", 1.0),
        ("dropout", -0.1),
        ("activation", "no_such_activation"),
    ],
)
def test_bad_hyperparameters_are_rejected(argument, value):
    with pytest.raises(ValueError, match=f"Invalid value for argument `{argument}`"):
        build_mlp((40,), 10, **{argument: value})


def test_float64_policy_makes_every_weight_and_the_logits_float64():
    # The dynamical-loss recipe trains in float64: a float32 head would mix dtypes in the
    # gradients (and the Hessian). Mixed precision keeps its float32 head (test_init.py).
    floatx, policy = keras.config.floatx(), keras.config.dtype_policy()
    keras.config.set_floatx("float64")
    keras.config.set_dtype_policy("float64")
    try:
        model = build_mlp((2,), 3, hidden=(5,))
    finally:
        keras.config.set_floatx(floatx)
        keras.config.set_dtype_policy(policy)
    assert {w.dtype for w in model.weights} == {"float64"}
    logits = keras.ops.convert_to_numpy(model(np.ones((2, 2)), training=False))
    assert logits.dtype == np.float64
    # Back under the default policy the head is float32 again.
    assert build_mlp((2,), 3).output.dtype == "float32"
