"""read_search on a real tiny search, on one killed mid-generation, and on wrong directories."""

import math

import numpy as np
import pytest

from metaloss.search import results, tuner
from metaloss.search.results import SearchRecord, TrialRecord, read_search

from ..conftest import run_python
from .helpers import (
    generation_scores,
    kill_during_last_generation,
    read_json,
    tiny_search,
    write_json,
)


@pytest.fixture(scope="module")
def search_dir(tmp_path_factory):
    return tiny_search(tmp_path_factory.mktemp("search") / "run")


def test_reads_settings_generations_and_every_trial(search_dir):
    record = read_search(search_dir)
    assert isinstance(record, SearchRecord)
    assert record.settings["task"]["dataset"] == "spiral"
    assert record.settings["num_classes"] == 3
    assert [g["generation"] for g in record.generations] == [0, 1, 2]
    assert record.in_flight is None
    assert record.best_loss == search_dir / "best_loss.json"
    # Every candidate of the 3 x 5 is either a trial or rejected by the invariant.
    assert len(record.trials) + record.rejected == 15
    assert record.rejected == sum(g["rejected"] for g in record.generations)
    ids = sorted(p.name.removeprefix("trial_") for p in (search_dir / "trials").glob("trial_*"))
    assert [t.trial_id for t in record.trials] == ids
    assert all(isinstance(t, TrialRecord) and t.seconds > 0 for t in record.trials)


def test_generation_scores_match_the_candidate_files(search_dir):
    record = read_search(search_dir)
    # Expected numbers: the scores in each generation's candidate.json files, read directly.
    scores = generation_scores(search_dir)
    for generation in record.generations:
        trained = scores[generation["generation"]]
        assert generation["best_score"] == pytest.approx(max(trained))
        assert generation["median_score"] == pytest.approx(float(np.median(trained)))
    for trial in record.trials:
        candidate = read_json(search_dir / "trials" / f"trial_{trial.trial_id}" / "candidate.json")
        assert trial.score == candidate["score"] and trial.status == candidate["status"]
        assert trial.values == candidate["values"]
        assert candidate["score"] in scores[trial.generation]


def test_best_and_top_agree_with_the_saved_best_loss(search_dir):
    record = read_search(search_dir)
    top = record.top(5)
    assert len(top) == 5 and record.best == top[0]
    assert [t.score for t in top] == sorted((t.score for t in top), reverse=True)
    assert record.best.score == max(t.score for t in record.trials)
    # best_loss.json is what KerasTuner chose (ties go to the earliest trial, as here).
    theta = read_json(search_dir / "best_loss.json")["config"]["theta"]
    assert [record.best.values[f"theta_{i}"] for i in range(8)] == pytest.approx(theta)
    assert len(record.top(100)) == len(record.trials)
    with pytest.raises(ValueError, match="Invalid value for argument `k`"):
        record.top(0)


def test_a_search_killed_mid_generation_still_reads(search_dir, tmp_path):
    killed = kill_during_last_generation(search_dir, tmp_path / "killed")
    (tmp_path / "killed" / "trials" / "trial_0000" / "candidate.json").write_text('{"trial_')
    record = read_search(tmp_path / "killed")
    last = killed["record"]
    assert len(record.generations) == 2
    assert record.in_flight == {
        "generation": last["generation"],
        "candidates": 5,
        "served": 4,
        "rejected": last["trial_ids"][:-1].count("rejected"),
        "reused": 0,
    }
    assert record.best_loss is None
    by_id = {t.trial_id: t for t in record.trials}
    assert "9999" not in by_id and killed["unserved"] not in by_id  # nothing written there
    running = by_id[killed["running"]]
    assert running.status == "running" and math.isnan(running.score) and running.values
    assert running.generation is None and not running.scored
    in_flight = [t for t in last["trial_ids"][:-1] if t != "rejected"]
    assert all(by_id[t].generation is None for t in in_flight)
    # A torn candidate.json falls back to KerasTuner's trial.json.
    assert by_id["0000"].status == "completed" and by_id["0000"].generation == 0
    first = read_json(search_dir / "trials" / "trial_0000" / "candidate.json")
    assert by_id["0000"].score == first["score"]
    assert record.best is not None and record.best.status == "completed"


@pytest.mark.parametrize("missing", ["directory", "search.json", "trials/oracle.json"])
def test_not_a_search_directory_is_a_value_error(search_dir, tmp_path, missing):
    directory = tmp_path / "copy"
    if missing != "directory":
        directory.mkdir()
        (directory / "trials").mkdir()
        present = "trials/oracle.json" if missing == "search.json" else "search.json"
        (directory / present).write_text((search_dir / present).read_text())
    with pytest.raises(ValueError, match="Invalid value for argument `directory`") as error:
        read_search(directory)
    assert "search.json and trials/oracle.json" in str(error.value)
    assert str(directory) in str(error.value)


def test_file_names_mirror_the_tuner():
    assert results.SEARCH_FILE == tuner.SEARCH_FILE
    assert results.BEST_LOSS_FILE == tuner.BEST_LOSS_FILE
    assert results.TRIALS_DIR == tuner.TRIALS_DIR
    assert results.CANDIDATE_FILE == tuner.CANDIDATE_FILE


def test_reading_does_not_import_tensorflow(search_dir):
    # Load the module from its file, bypassing metaloss.search's __init__ (which imports Keras).
    code = f"""
import importlib.util, sys
spec = importlib.util.spec_from_file_location("results", {results.__file__!r})
module = importlib.util.module_from_spec(spec)
sys.modules["results"] = module
spec.loader.exec_module(module)
record = module.read_search({str(search_dir)!r})
print(len(record.trials), "tensorflow" in sys.modules, "keras" in sys.modules)
"""
    trials, tensorflow, keras = run_python(code).split()
    assert int(trials) == len(read_search(search_dir).trials)
    assert (tensorflow, keras) == ("False", "False")


def test_an_abandoned_trial_is_not_a_result_even_with_a_late_candidate_file(search_dir, tmp_path):
    import shutil

    from metaloss.search.report import _totals

    target = tmp_path / "abandoned"
    shutil.copytree(search_dir, target)
    best = read_search(target).best
    # The best trial's worker "went silent" and was abandoned; its candidate.json came late.
    oracle_path = target / "trials" / "oracle.json"
    oracle = read_json(oracle_path)
    oracle["cmaes"]["trial_clock"] = {"last_report": {}, "abandoned": {best.trial_id: 0}}
    write_json(oracle_path, oracle)
    record = read_search(target)
    abandoned = next(t for t in record.trials if t.trial_id == best.trial_id)
    assert abandoned.status == "abandoned" and not abandoned.scored
    assert record.best.trial_id != best.trial_id
    assert _totals(record)["abandoned (served again)"] == 1
