"""EvoMAL's filters: the rejection protocol and the gradient-equivalence archive."""

import keras
import numpy as np
import pytest

from metaloss.losses import SymbolicLoss
from metaloss.search.evomal import GradientEquivalence, rejection_protocol

CE = "neg(mul(y, log(f)))"
RNG = np.random.default_rng(0)
LOGITS = RNG.normal(scale=0.1, size=(100, 10)).astype("float32")  # an untrained model's
LABELS = RNG.integers(0, 10, 100)


def symbolic(expression):
    return SymbolicLoss(expression, from_logits=True)


def test_cross_entropy_passes_and_its_optimised_predictions_err_less():
    result = rejection_protocol(symbolic(CE), LOGITS, LABELS)
    assert result.error_before == pytest.approx(np.mean(LOGITS.argmax(1) != LABELS))
    assert not result.rejected and result.error_after < result.error_before
    assert result.error_after == 0.0  # 100 Adam steps of 0.01 fit 100 free logits


@pytest.mark.parametrize(
    "expression",
    [
        "mul(y, log(f))",  # minus cross-entropy: drives the true class down
        "0.5",  # a constant: no gradient, nothing moves
        "mul(y, f)",  # pushes the true class's probability down
    ],
)
def test_losses_that_cannot_lower_the_error_are_rejected(expression):
    result = rejection_protocol(symbolic(expression), LOGITS, LABELS)
    assert result.rejected and result.error_after >= result.error_before


def test_a_loss_that_turns_non_finite_is_rejected():
    class Exploding(keras.losses.Loss):
        def call(self, y_true, y_pred):
            return keras.ops.sum(y_pred, axis=-1) / 0.0

    result = rejection_protocol(Exploding(), LOGITS, LABELS)
    assert result.rejected and not result.finite


def test_gradient_fingerprint_of_cross_entropy_is_softmax_minus_label_over_n():
    archive = GradientEquivalence(LOGITS, LABELS)
    shifted = np.exp(LOGITS - LOGITS.max(axis=1, keepdims=True))
    softmax = shifted / shifted.sum(axis=1, keepdims=True)
    expected = (softmax - np.eye(10)[LABELS]) / len(LABELS)
    np.testing.assert_allclose(archive.fingerprint(symbolic(CE)), expected, atol=1e-6)


def test_losses_that_differ_by_a_constant_are_equivalent_and_a_rescaled_one_is_not():
    archive = GradientEquivalence(LOGITS, LABELS)
    assert archive.match(symbolic(CE)) is None
    archive.add("ce", symbolic(CE))
    assert archive.match(symbolic(f"add({CE}, 0.7)")) == "ce"
    assert archive.match(symbolic(f"mul(2, {CE})")) is None
    assert archive.match(symbolic("square(sub(f, y))")) is None
    assert len(archive) == 1


def test_bad_samples_name_the_argument():
    with pytest.raises(ValueError, match="`logits`"):
        rejection_protocol(symbolic(CE), LOGITS[:, :1], LABELS)
    with pytest.raises(ValueError, match="`labels`"):
        GradientEquivalence(LOGITS, LABELS[:5])
    with pytest.raises(ValueError, match="`steps`"):
        rejection_protocol(symbolic(CE), LOGITS, LABELS, steps=0)
