"""EvoMAL's local search: the edge weights' meta-gradient against finite differences, a real run."""

import keras
import numpy as np
import pytest

from metaloss.losses import SymbolicLoss
from metaloss.search import AdaLFL
from metaloss.search.evomal.local_search import tune_weights

from ..training.helpers import blobs, dataset, mlp
from .test_online import (  # noqa: F401
    float64,
    probe_step_meta_objective,
    tiny_batches,
    tiny_model,
)

EXPRESSION = "add(neg(mul(y, log(f))), mul(0.5, square(sub(f, y))))"


def meta_objective(model, expression, weights, batch, meta_batch, inner_lr):
    """Cross-entropy after one plain step ``θ - α ∇_θ L_w``, computed on a model copy."""
    probe = SymbolicLoss(expression, weights=weights, from_logits=True)
    return probe_step_meta_objective(model, probe, batch, meta_batch, inner_lr)


def test_edge_weight_meta_gradient_matches_central_finite_differences(float64):  # noqa: F811
    model = tiny_model()
    weights = 1.0 + np.random.default_rng(0).normal(scale=0.2, size=11)
    loss = SymbolicLoss(EXPRESSION, weights=weights, from_logits=True)
    adalfl = AdaLFL(model, loss, "sgd", seed=0, inner_lr=0.5)
    batch, meta_batch = tiny_batches(seed=2)
    value, (gradient,) = adalfl.offline_meta_gradient(*batch, *meta_batch)
    assert value.numpy() == pytest.approx(
        meta_objective(model, EXPRESSION, weights, batch, meta_batch, 0.5), rel=1e-10
    )
    h = 1e-5
    for index in range(loss.edges):
        step = np.zeros(loss.edges)
        step[index] = h
        plus, minus = (
            meta_objective(model, EXPRESSION, weights + s * step, batch, meta_batch, 0.5)
            for s in (1, -1)
        )
        assert gradient.numpy()[index] == pytest.approx((plus - minus) / (2 * h), abs=1e-9)


def test_tune_weights_moves_the_copy_lowers_the_meta_objective_and_leaves_the_rest():
    x, y = blobs(n=128)
    model = mlp(seed=1)
    before = model.get_weights()
    loss = SymbolicLoss(EXPRESSION, from_logits=True)
    search = tune_weights(loss, model, dataset(x, y), steps=60, learning_rate=0.05, seed=0)
    assert search.result.status == "completed" and len(search.result.history["meta_loss"]) == 60
    assert search.improved
    assert loss.get_weights() == [1.0] * loss.edges  # the candidate itself is untouched
    assert np.abs(np.array(search.loss.get_weights()) - 1.0).max() > 1e-3
    assert search.loss.expression == loss.expression
    for got, want in zip(model.get_weights(), before, strict=True):
        np.testing.assert_array_equal(got, want)


def test_tune_weights_wants_a_symbolic_loss():
    x, y = blobs(n=32)
    with pytest.raises(ValueError, match="`loss`"):
        tune_weights(keras.losses.CategoricalCrossentropy(), mlp(), dataset(x, y))
