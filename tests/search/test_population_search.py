"""Candidates trained together (``parallel_candidates``) score as they do one after another.

The reference is the sequential path: one `Trainer` per candidate, each from the task's seeded
initial weights on the task's seeded data order.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from keras import ops

import metaloss
from metaloss.analysis.statistics import welch_t_test
from metaloss.search import SearchTask, TaylorGLOSearch, evaluate_candidates
from metaloss.search.tuner import BEST_LOSS_FILE, CANDIDATE_FILE

TINY = SearchTask("spiral", "mlp:hidden=[16]", epochs=2, batch_size=64)


def _inf_loss(y_true, y_pred):
    return ops.sum(ops.square(y_pred), axis=-1) * float("inf")


def _same_result(together, alone):
    assert together.status == alone.status
    assert together.epochs == alone.epochs and together.steps == alone.steps
    if math.isnan(alone.score):
        assert math.isnan(together.score)
    else:
        assert together.score == pytest.approx(alone.score, abs=1e-6)
    for key, values in alone.history.items():
        np.testing.assert_allclose(together.history[key], values, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("fitness_seeds", [1, 2])
def test_together_gives_the_sequential_results_statuses_included(fitness_seeds):
    # 6 epochs with the abort check at epoch 2: θ = 0 is a constant loss and aborts (the others
    # may too), the infinite loss diverges at its first step. Groups of 3 and 2; with two
    # fitness seeds, 6 and 4 replicas on two data streams.
    task = SearchTask(
        "spiral",
        "mlp:hidden=[16]",
        epochs=6,
        abort_epoch=2,
        abort_threshold=0.9,
        fitness_seeds=fitness_seeds,
    )
    candidates = [
        "cross_entropy",
        metaloss.losses.TaylorGLO([0.0] * 8, from_logits=True),
        _inf_loss,
        "baikal",
        metaloss.losses.TaylorGLO([0, 0, 0, -2, 0, 2, 0, 0], from_logits=True),
    ]
    alone = evaluate_candidates(task, candidates)
    together = evaluate_candidates(task, candidates, parallel_candidates=3)
    assert alone[1].status == "aborted" and alone[2].status == "diverged"
    for a, b in zip(together, alone, strict=True):
        _same_result(a, b)
    assert "early abort" in together[1].message and together[1].epochs == 2
    for a, b in zip(together, alone, strict=True):
        assert a.seeds == b.seeds == list(range(fitness_seeds))
        np.testing.assert_allclose(a.seed_scores, b.seed_scores, atol=1e-6)
        assert a.seed_statuses == b.seed_statuses


def test_each_fitness_seed_scores_as_a_search_on_that_seed_alone():
    # Seeds 3 and 4: their own split, data order and initial weights, each the single-seed
    # task's; the fitness is their plain mean.
    task = SearchTask("spiral", "mlp:hidden=[16]", epochs=3, seed=3, fitness_seeds=2)
    losses = ["cross_entropy", "baikal"]
    [first, second] = evaluate_candidates(task, losses, parallel_candidates=2)
    for result, loss in ((first, losses[0]), (second, losses[1])):
        singles = [
            evaluate_candidates(SearchTask("spiral", "mlp:hidden=[16]", epochs=3, seed=s), [loss])
            for s in (3, 4)
        ]
        expected = [r.score for [r] in singles]
        np.testing.assert_allclose(result.seed_scores, expected, atol=1e-6)
        assert result.score == pytest.approx(np.mean(expected), abs=1e-6)


def test_a_partly_diverged_candidate_scores_zero_for_its_diverged_seeds():
    from metaloss.search.evaluate import CandidateResult, _combined

    task = SearchTask("spiral", "mlp", seed=5, fitness_seeds=3)
    runs = [
        CandidateResult(0.6, "completed", "ok", {"val_accuracy": [0.5, 0.6]}, 2, 10, 1.0),
        CandidateResult(math.nan, "diverged", "boom", {"val_accuracy": [0.2]}, 1, 4, 0.5),
        CandidateResult(0.12, "aborted", "early abort: ...", {"val_accuracy": [0.1, 0.12]}, 2, 10),
    ]
    result = _combined(task, runs)
    assert result.score == pytest.approx((0.6 + 0.0 + 0.12) / 3)
    assert result.status == "completed" and "1 of 3 diverged, scored 0" in result.message
    assert result.seeds == [5, 6, 7] and result.seed_statuses == [
        "completed",
        "diverged",
        "aborted",
    ]
    assert result.history["val_accuracy"] == pytest.approx([0.3, 0.36])  # the trained seeds
    assert result.steps == 24 and result.epochs == 2
    all_diverged = _combined(task, [runs[1]] * 3)
    assert all_diverged.status == "diverged" and math.isnan(all_diverged.score)
    aborted = _combined(task, [runs[2], runs[1], runs[2]])
    assert aborted.status == "aborted" and aborted.score == pytest.approx(0.08)


@pytest.mark.parametrize("value", [0, -1, 1.5, True])
def test_fitness_seeds_must_be_a_positive_integer(value):
    with pytest.raises(ValueError, match="`fitness_seeds`"):
        SearchTask(fitness_seeds=value)


def test_robust_fitness_together_is_the_sequential_one():
    task = SearchTask(
        "spiral", "mlp:hidden=[16]", epochs=2, batch_size=64, objective="robust", attack_eps=0.2
    )
    alone = evaluate_candidates(task, ["cross_entropy", "baikal"])
    together = evaluate_candidates(task, ["cross_entropy", "baikal"], parallel_candidates=2)
    for a, b in zip(together, alone, strict=True):
        _same_result(a, b)
        assert "FGSM (eps=0.2)" in a.message


def _scores(tuner) -> list[float]:
    return [f for g in tuner.oracle.history for f in g["fitness"] if f is not None]


def test_a_parallel_search_evolves_as_the_sequential_one(tmp_path):
    searches = {}
    for parallel in (1, 3):
        directory = tmp_path / f"parallel{parallel}"
        tuner = TaylorGLOSearch(
            TINY,
            generations=3,
            population_size=4,
            seed=0,
            parallel_candidates=parallel,
            directory=directory,
        )
        tuner.search(verbose=0)
        searches[parallel] = (tuner, directory)
    (alone, _), (together, directory) = searches[1], searches[3]
    # CMA-ES saw the same fitness values, so it proposed the same candidates every generation.
    for a, b in zip(together.oracle.history, alone.oracle.history, strict=True):
        np.testing.assert_allclose(a["candidates"], b["candidates"], atol=1e-9)
    scores_together, scores_alone = _scores(together), _scores(alone)
    assert len(scores_together) == len(scores_alone) > 0
    np.testing.assert_allclose(scores_together, scores_alone, atol=1e-6)
    assert welch_t_test(scores_together, scores_alone).p_value > 0.5
    assert together.settings["parallel_candidates"] == 3
    for trial_id in together.oracle.trials:
        record = json.loads(
            (directory / "trials" / f"trial_{trial_id}" / CANDIDATE_FILE).read_text()
        )
        assert record["status"] in ("completed", "aborted", "diverged")
    assert (directory / BEST_LOSS_FILE).exists()


def test_parallel_candidates_must_be_a_positive_integer(tmp_path):
    with pytest.raises(ValueError, match="`parallel_candidates`"):
        TaylorGLOSearch(TINY, generations=1, parallel_candidates=0, directory=tmp_path)
    with pytest.raises(ValueError, match="`parallel_candidates`"):
        evaluate_candidates(TINY, ["cross_entropy"], parallel_candidates=1.5)
