"""Multi-seed fitness and re-evaluation of the best candidates on fresh seeds.

References are independent runs: each seed's score is the single-seed task's score of that
loss, the mean and the crowned candidate are recomputed with NumPy from those.
"""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing import event_accumulator

import metaloss
from metaloss.search import SearchTask, TaylorGLOSearch, evaluate_candidates
from metaloss.search import reevaluation as reevaluation_module
from metaloss.search.reevaluation import REEVALUATION_FILE, distinct_best, seeds_after
from metaloss.search.report import write_report
from metaloss.search.results import TrialRecord, read_search
from metaloss.search.tuner import BEST_LOSS_FILE, CANDIDATE_FILE

TASK = SearchTask("spiral", "mlp:hidden=[16]", epochs=2, batch_size=64, seed=4)


def _search(directory, **kwargs):
    arguments = {
        "generations": 2,
        "population_size": 4,
        "seed": 0,
        "fitness_seeds": 2,
        "reevaluate_top": 2,
        "reevaluate_seeds": 2,
        "parallel_candidates": 4,
        "directory": directory,
        **kwargs,
    }
    return TaylorGLOSearch(TASK, **arguments)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    directory = tmp_path_factory.mktemp("reevaluated")
    tuner = _search(directory)
    tuner.search(verbose=0)
    return tuner, directory


def _single_seed_score(loss, seed: int) -> float:
    task = SearchTask("spiral", "mlp:hidden=[16]", epochs=2, batch_size=64, seed=seed)
    [result] = evaluate_candidates(task, [loss])
    return 0.0 if result.status == "diverged" else result.score


def test_a_candidate_is_scored_by_the_mean_of_its_seeds(finished):
    tuner, directory = finished
    assert tuner.task.seeds == [4, 5]
    trial_id = next(iter(tuner.oracle.trials))
    record = json.loads((directory / "trials" / f"trial_{trial_id}" / CANDIDATE_FILE).read_text())
    assert record["seeds"] == [4, 5] and len(record["seed_scores"]) == 2
    loss = metaloss.losses.deserialize(record["loss"])
    expected = [_single_seed_score(loss, seed) for seed in (4, 5)]
    np.testing.assert_allclose(record["seed_scores"], expected, atol=1e-6)
    assert record["score"] == pytest.approx(np.mean(expected), abs=1e-6)
    metrics = tuner.oracle.trials[trial_id].metrics
    assert metrics.get_last_value("val_accuracy_seed_5") == pytest.approx(expected[1], abs=1e-6)
    assert read_search(directory).trials[0].seed_scores.keys() == {4, 5}
    # TensorBoard: each seed's score beside the mean, and one run of epoch scalars per seed.
    run = event_accumulator.EventAccumulator(str(directory / "logs" / f"trial_{trial_id}"))
    run.Reload()
    for tag, value in (("score", record["score"]), ("score/seed_5", expected[1])):
        [event] = run.Tensors(tag)
        assert float(tf.make_ndarray(event.tensor_proto)) == pytest.approx(value, abs=1e-6)
    for seed in (4, 5):
        per_seed = event_accumulator.EventAccumulator(
            str(directory / "logs" / f"trial_{trial_id}" / f"seed_{seed}")
        )
        per_seed.Reload()
        assert "validation_accuracy" in per_seed.Tags()["tensors"]


def test_the_best_candidates_are_retrained_on_fresh_seeds_and_the_best_mean_crowned(finished):
    tuner, directory = finished
    state = json.loads((directory / REEVALUATION_FILE).read_text())
    assert state["complete"] and state["seeds"] == [6, 7] == seeds_after(tuner.task, 2)
    assert not set(state["seeds"]) & set(tuner.task.seeds)
    record = read_search(directory)
    top = sorted((t for t in record.trials if t.scored), key=lambda t: -t.score)[:2]
    assert [e["trial_id"] for e in state["candidates"]] == [t.trial_id for t in top]
    means = []
    for entry in state["candidates"]:
        loss = metaloss.losses.deserialize(entry["loss"])
        expected = [_single_seed_score(loss, seed) for seed in (6, 7)]
        np.testing.assert_allclose(entry["scores"], expected, atol=1e-6)
        assert entry["mean"] == pytest.approx(np.mean(expected), abs=1e-6)
        means.append(np.mean(expected))
    crowned = state["candidates"][int(np.argmax(means))]
    assert state["best_trial_id"] == crowned["trial_id"] == record.best.trial_id
    saved = metaloss.losses.get(str(directory / BEST_LOSS_FILE))
    assert list(saved.theta) == pytest.approx([crowned["values"][f"theta_{i}"] for i in range(8)])
    report = write_report(directory).read_text()
    assert "## Re-evaluation on fresh seeds" in report and "crowned" in report


def test_a_search_killed_during_its_reevaluation_resumes_it_at_the_unfinished_seed(
    finished, tmp_path, monkeypatch
):
    _tuner, directory = finished
    complete = json.loads((directory / REEVALUATION_FILE).read_text())
    # The files of the same search, as a kill after the re-evaluation's first seed left them.
    copy = tmp_path / "killed"
    shutil.copytree(directory, copy)
    (copy / BEST_LOSS_FILE).unlink()
    partial = json.loads(json.dumps(complete))
    partial.update(complete=False, best_trial_id=None, seeds_done=[6])
    for entry in partial["candidates"]:
        entry.update(seeds=[6], scores=entry["scores"][:1], statuses=entry["statuses"][:1])
        entry["mean"] = None
    (copy / REEVALUATION_FILE).write_text(json.dumps(partial))
    trained_seeds = []
    original = reevaluation_module.evaluate_candidates

    def counting(task, *args, **kwargs):
        trained_seeds.append(task.seed)
        return original(task, *args, **kwargs)

    monkeypatch.setattr(reevaluation_module, "evaluate_candidates", counting)
    _search(copy).search(verbose=0)
    assert trained_seeds == [7]
    resumed = json.loads((copy / REEVALUATION_FILE).read_text())
    for a, b in zip(resumed["candidates"], complete["candidates"], strict=True):
        np.testing.assert_allclose(a["scores"], b["scores"], atol=1e-6)
    assert resumed["best_trial_id"] == complete["best_trial_id"]
    assert (copy / BEST_LOSS_FILE).exists()


def test_distinct_best_skips_repeated_candidates():
    def trial(trial_id, score, theta):
        return TrialRecord(trial_id, 0, {"theta_0": theta}, score, "completed")

    trials = [
        trial("0", 0.5, 1.0),
        trial("1", 0.7, 2.0),
        trial("2", 0.7, 2.0),
        trial("3", math.nan, 3.0),
        trial("4", 0.6, 4.0),
    ]
    assert [t.trial_id for t in distinct_best(trials, 3)] == ["1", "4", "0"]


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"reevaluate_top": -1}, "reevaluate_top"),
        ({"reevaluate_seeds": 0}, "reevaluate_seeds"),
        ({"reevaluate_top": 1.5}, "reevaluate_top"),
        ({"fitness_seeds": 0}, "fitness_seeds"),
    ],
)
def test_bad_reevaluation_arguments_name_themselves(tmp_path, kwargs, argument):
    with pytest.raises(ValueError, match=f"`{argument}`"):
        _search(tmp_path, **kwargs)
