"""SymbolicLoss: the grammar (hostile strings included), hand values against NumPy, edge weights."""

import builtins

import keras
import numpy as np
import pytest
import tensorflow as tf

from metaloss import losses
from metaloss.losses import SymbolicLoss, symbolic_loss
from metaloss.losses._expression import MAX_DEPTH, parse_expression

RNG = np.random.default_rng(0)
LABELS = np.eye(5)[RNG.integers(0, 5, 16)]
PROBABILITIES = RNG.dirichlet(np.ones(5), 16)
LOGITS = RNG.normal(scale=3.0, size=(16, 5))


def per_sample(expression, y=LABELS, f=PROBABILITIES, **kwargs):
    return np.asarray(symbolic_loss(y, f, expression, **kwargs))


def test_cross_entropy_expression_equals_keras_categorical_cross_entropy():
    expression = "neg(mul(y, log(f)))"
    for from_logits, predictions in ((False, PROBABILITIES), (True, LOGITS)):
        ours = SymbolicLoss(expression, from_logits=from_logits)
        keras_loss = keras.losses.CategoricalCrossentropy(from_logits=from_logits)
        assert float(ours(LABELS, predictions)) == pytest.approx(
            float(keras_loss(LABELS, predictions)), rel=1e-6
        )
        sparse = np.argmax(LABELS, axis=1)
        assert float(ours(sparse, predictions)) == pytest.approx(
            float(keras_loss(LABELS, predictions)), rel=1e-6
        )


@pytest.mark.parametrize(
    ("expression", "numpy_value"),
    [
        ("add(y, f)", lambda y, f: y + f),
        ("sub(f, y)", lambda y, f: f - y),
        ("mul(y, f)", lambda y, f: y * f),
        ("div(f, sub(y, 0.3))", lambda y, f: f / np.sqrt(1 + (y - 0.3) ** 2)),  # analytic quotient
        ("min(f, 0.2)", lambda y, f: np.minimum(f, 0.2)),
        ("max(f, y)", lambda y, f: np.maximum(f, y)),
        ("sign(sub(f, 0.2))", lambda y, f: np.sign(f - 0.2)),
        ("square(sub(f, y))", lambda y, f: (f - y) ** 2),
        ("abs(sub(f, y))", lambda y, f: np.abs(f - y)),
        ("log(sub(f, y))", lambda y, f: np.log(np.maximum(np.abs(f - y), 1e-7))),  # protected
        ("sqrt(sub(f, 0.5))", lambda y, f: np.sqrt(np.maximum(np.abs(f - 0.5), 1e-7))),
        ("tanh(mul(3, f))", lambda y, f: np.tanh(3 * f)),
        ("neg(f)", lambda y, f: -f),
        ("-1.5e-1", lambda y, f: np.full_like(f, -0.15)),
    ],
)
def test_each_primitive_against_numpy(expression, numpy_value):
    expected = numpy_value(LABELS, PROBABILITIES).sum(axis=1)  # summed over the classes
    np.testing.assert_allclose(per_sample(expression), expected, rtol=1e-5, atol=1e-6)


def test_log_and_sqrt_are_protected_at_zero_and_below():
    f = np.array([[0.0, 1.0]])
    y = np.array([[1.0, 0.0]])
    assert per_sample("log(f)", y, f)[0] == pytest.approx(np.log(1e-7), rel=1e-5)
    assert per_sample("sqrt(neg(f))", y, f)[0] == pytest.approx(np.sqrt(1e-7) + 1.0, rel=1e-5)


def test_edge_weights_multiply_each_node_feeding_its_parent():
    # Prefix order: add(0) -> mul(1) -> y(2), f(3); square(4) -> f(5). The root has no edge.
    weights = [2.0, 3.0, 5.0, 0.5, 7.0]
    y, f = LABELS, PROBABILITIES
    expected = (2.0 * (3.0 * y) * (5.0 * f) + 0.5 * np.square(7.0 * f)).sum(axis=1)
    np.testing.assert_allclose(
        per_sample("add(mul(y, f), square(f))", weights=weights), expected, rtol=1e-5
    )
    loss = SymbolicLoss("add(mul(y, f), square(f))", weights=weights, reduction="none")
    np.testing.assert_allclose(loss(y, f), expected, rtol=1e-5)


def test_softplus_output_activation_is_per_class_before_the_sum():
    expected = np.log1p(np.exp(PROBABILITIES - LABELS)).sum(axis=1)
    np.testing.assert_allclose(
        per_sample("sub(f, y)", output_activation="softplus"), expected, rtol=1e-5
    )


def test_gradient_in_the_edge_weights_matches_finite_differences():
    keras.config.set_floatx("float64")
    try:
        loss = SymbolicLoss("add(neg(mul(y, log(f))), mul(0.1, square(sub(f, y))))")
        weights = np.array(loss.get_weights()) + RNG.normal(scale=0.1, size=loss.edges)
        loss.set_weights(weights)
        with tf.GradientTape() as tape:
            value = loss(LABELS, PROBABILITIES)
        analytic = tape.gradient(value, loss.edge_weights.value).numpy()
        for index in range(loss.edges):
            step = np.zeros(loss.edges)
            step[index] = 1e-6
            values = []
            for sign in (1, -1):
                loss.set_weights(weights + sign * step)
                values.append(float(loss(LABELS, PROBABILITIES)))
            loss.set_weights(weights)
            assert analytic[index] == pytest.approx(
                (values[0] - values[1]) / 2e-6, rel=1e-5, abs=1e-8
            )
    finally:
        keras.config.set_floatx("float32")


def test_config_holds_the_canonical_expression_and_the_weights():
    loss = losses.get("symbolic:expression=mul( y ,f ),weights=[3,4]")
    assert isinstance(loss, SymbolicLoss)
    config = loss.get_config()
    assert config["expression"] == "mul(y, f)" and config["weights"] == [3.0, 4.0]
    again = SymbolicLoss.from_config(config)
    np.testing.assert_allclose(again(LABELS, PROBABILITIES), loss(LABELS, PROBABILITIES))


@pytest.mark.parametrize(
    ("text", "token"),
    [
        ("__import__('os').system('ls')", "'__import__"),
        ("y.__class__", "'.'"),
        ("mul(y, f).real", "'.'"),
        ("lambda: y", "'lambda'"),
        ("exec(y)", "'exec'"),
        ("eval('1')", "'eval'"),
        ("exp(f)", "'exp'"),
        ("f(y)", "'f' cannot be called"),
        ("add(y)", "takes 2 argument(s), got 1"),
        ("neg(y, f)", "takes 1 argument(s), got 2"),
        ("mul(y, f) y", "after the expression"),
        ("mul(y, f", "end of text"),
        ("y; import os", "';'"),
        ("add(y, [f])", "'['"),
        ("mul(y, 1e999)", "not finite"),
        ("", "end of text"),
        ("add(y,,f)", "','"),
        ("-y", "'-'"),
        ("neg(" * (MAX_DEPTH + 5) + "y" + ")" * (MAX_DEPTH + 5), f"deeper than {MAX_DEPTH}"),
        ("y" * 20_000, "longer than"),
    ],
)
def test_hostile_and_malformed_expressions_name_the_offending_token(text, token):
    with pytest.raises(ValueError, match="`expression`") as error:
        parse_expression(text)
    assert token in str(error.value)


def test_non_string_expressions_and_bad_arguments_are_value_errors():
    with pytest.raises(ValueError, match="`expression`"):
        SymbolicLoss(["neg", "y"])
    with pytest.raises(ValueError, match=r"`weights`.*4 finite numbers"):
        SymbolicLoss("neg(mul(y, log(f)))", weights=[1.0, 2.0])
    with pytest.raises(ValueError, match="`weights`"):
        SymbolicLoss("mul(y, f)", weights=[1.0, float("nan")])
    with pytest.raises(ValueError, match="`output_activation`"):
        SymbolicLoss("mul(y, f)", output_activation="relu")


def test_parsing_never_calls_eval_exec_or_compile(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("a loss expression reached Python's evaluator")

    for name in ("eval", "exec", "compile"):
        monkeypatch.setattr(builtins, name, forbidden)
    loss = SymbolicLoss("add(neg(mul(y, log(f))), 0.5)")
    assert np.isfinite(float(loss(LABELS, PROBABILITIES)))
