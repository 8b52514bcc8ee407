"""EvoMALSearch end to end on a tiny task: trials, filters, local search, best loss, resume."""

from __future__ import annotations

import json

import numpy as np
import pytest

from metaloss import losses
from metaloss.losses import SymbolicLoss
from metaloss.search import EvoMALSearch, SearchTask
from metaloss.search.evomal import ExpressionFilters, SymbolicSpace, rejection_protocol
from metaloss.search.evomal.tuner import LOCAL_SEARCH_FILE
from metaloss.search.results import read_search
from metaloss.search.tuner import BEST_LOSS_FILE, CANDIDATE_FILE

TINY = SearchTask("spiral", "mlp:hidden=[16]", epochs=1, batch_size=64)


def make_search(directory, **kwargs):
    kwargs = {
        "generations": 2,
        "population_size": 4,
        "seed": 0,
        "filter_steps": 20,
        "local_search_steps": 6,
        "reevaluate_top": 1,
        "reevaluate_seeds": 1,
        "tensorboard": False,
        "directory": directory,
        **kwargs,
    }
    return EvoMALSearch(TINY, **kwargs)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    directory = tmp_path_factory.mktemp("evomal")
    search = make_search(directory)
    search.search(verbose=0)
    return search, directory


@pytest.mark.slow
def test_trials_train_expression_losses_and_the_rest_are_rejected_or_reused(finished):
    search, directory = finished
    history = search.oracle.history
    assert len(history) == 2 and sum(len(g["candidates"]) for g in history) == 8
    trained = [t for g in history for t in g["trial_ids"] if t not in ("rejected", "reused")]
    assert sorted(trained) == sorted(search.oracle.trials)
    for path in (directory / "trials").glob(f"trial_*/{CANDIDATE_FILE}"):
        record = json.loads(path.read_text())
        expression = record["values"]["expression"]
        assert isinstance(expression, str)
        assert record["loss"]["config"]["expression"] == SymbolicLoss(expression).expression
    record = read_search(directory)
    assert record.rejected == sum(g["rejected"] for g in history)
    assert record.reused == sum(g["reused"] for g in history)
    assert record.settings["method"] == "evomal" and "sigma0" not in record.settings


@pytest.mark.slow
def test_rejected_expressions_fail_the_rejection_protocol(finished):
    search, _ = finished
    logits, labels = search.filters.sample()
    space = SymbolicSpace()
    for generation in search.oracle.history:
        for expression, who in zip(generation["candidates"], generation["trial_ids"], strict=True):
            verdict = rejection_protocol(space.loss(expression), logits, labels, steps=20)
            assert verdict.rejected == (who == "rejected"), expression


@pytest.mark.slow
def test_the_best_loss_holds_the_local_search_weights(finished):
    _search, directory = finished
    tuned = json.loads((directory / LOCAL_SEARCH_FILE).read_text())
    best = read_search(directory).best
    assert best.trial_id in tuned
    record = tuned[best.trial_id]
    saved = losses.get(directory / BEST_LOSS_FILE)
    assert isinstance(saved, SymbolicLoss) and saved.from_logits
    assert saved.expression == record["expression"]
    assert record["status"] == "completed" and len(record["weights"]) == saved.edges
    # Six Adam steps at 1e-3 move the weights, a little; they are kept when they helped.
    assert not np.allclose(record["weights"], 1.0)
    expected = record["weights"] if record["improved"] else [1.0] * saved.edges
    np.testing.assert_allclose(saved.get_weights(), expected, rtol=1e-6)


@pytest.mark.slow
def test_a_resumed_search_ends_with_the_same_result(tmp_path, finished):
    _, whole = finished
    cut = tmp_path / "cut"
    first = make_search(cut, max_trials=2)
    first.search(verbose=0)  # stops after 2 trained trials: a search cut short
    resumed = make_search(cut)
    resumed.search(verbose=0)
    a, b = read_search(whole), read_search(cut)
    assert [g["candidates"] for g in a.generations] == [g["candidates"] for g in b.generations]
    assert [g["trial_ids"].count("reused") for g in a.generations] == [
        g["trial_ids"].count("reused") for g in b.generations
    ]
    assert losses.serialize(losses.get(whole / BEST_LOSS_FILE)) == losses.serialize(
        losses.get(cut / BEST_LOSS_FILE)
    )


def test_filters_reject_a_loss_that_cannot_train_and_match_equivalent_ones():
    filters = ExpressionFilters(TINY, SymbolicSpace(), steps=30)
    assert filters.keep({"expression": "neg(mul(y, log(f)))"})  # cross-entropy trains
    assert not filters.keep({"expression": "mul(y, log(f))"})  # its negation cannot
    filters.add("neg(mul(y, log(f)))")
    # A constant added changes nothing in the gradient: equivalent.
    assert filters.match("add(neg(mul(y, log(f))), 1)") == "neg(mul(y, log(f)))"
    assert filters.match("square(sub(f, y))") is None


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"local_search_steps": -1}, "local_search_steps"),
        ({"population_size": 1}, "population_size"),
        ({"filter_steps": 0}, "steps"),
        ({"output_activation": "relu"}, "output_activation"),
    ],
)
def test_invalid_arguments_name_the_argument(tmp_path, kwargs, argument):
    with pytest.raises(ValueError, match=f"argument `{argument}`"):
        make_search(tmp_path, **kwargs)
