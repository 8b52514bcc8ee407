"""CMAESOracle driven directly, as KerasTuner's tuners drive it (create/update/end trial)."""

from __future__ import annotations

import math

import cma
import keras_tuner
import numpy as np
import pytest

from metaloss.search import CMAESOracle
from metaloss.search.oracle import FAILED_FITNESS

NAMES = ("a", "b", "c")
OBJECTIVE = keras_tuner.Objective("score", "min")


def space() -> keras_tuner.HyperParameters:
    hp = keras_tuner.HyperParameters()
    for name in NAMES:
        hp.Float(name, -10.0, 10.0)
    return hp


def make_oracle(tmp_path, name="search", **kwargs) -> CMAESOracle:
    kwargs.setdefault("generations", 3)
    kwargs.setdefault("population_size", 4)
    kwargs.setdefault("seed", 0)
    oracle = CMAESOracle(OBJECTIVE, hyperparameters=space(), **kwargs)
    oracle._set_project_dir(str(tmp_path), name)
    oracle.verbose = 0
    return oracle


def sphere(values: dict) -> float:
    return float(sum((values[n] - 1.0) ** 2 for n in NAMES))


def finish(oracle, trial, score=None, status="COMPLETED"):
    if score is not None:
        oracle.update_trial(trial.trial_id, {"score": score})
    trial.status = status
    oracle.end_trial(trial)


def run(oracle, objective=sphere, tuner_id="tuner0"):
    """Runs the oracle to its end with one tuner; returns the served values in order."""
    served = []
    while True:
        trial = oracle.create_trial(tuner_id)
        if trial.status == "STOPPED":
            return served
        assert trial.status == "RUNNING"
        served.append(dict(trial.hyperparameters.values))
        finish(oracle, trial, objective(trial.hyperparameters.values))


def test_same_seed_same_candidates_and_zero_is_an_ordinary_seed(tmp_path):
    first = run(make_oracle(tmp_path, "one", seed=0))
    second = run(make_oracle(tmp_path, "two", seed=0))
    other = run(make_oracle(tmp_path, "three", seed=1))
    assert len(first) == 3 * 4
    assert first == second
    assert first[0] != other[0]


def test_candidates_are_pycma_generations_and_cmaes_learns(tmp_path):
    oracle = make_oracle(tmp_path, generations=12, population_size=8)
    served = run(oracle)
    history = oracle.history
    assert [g["generation"] for g in history] == list(range(12))
    # Every trial belongs to exactly one generation, in order.
    assert [t for g in history for t in g["trial_ids"]] == sorted(oracle.trials)
    # CMA-ES minimises the sphere centred at (1, 1, 1): the last generation beats the first.
    assert history[-1]["best_fitness"] < 0.2 * history[0]["best_fitness"]
    assert min(sphere(v) for v in served[-8:]) < 0.5
    # The mean starts at zero with sigma0 = 1.2: first-generation spread is of that order.
    first = np.array([[v[n] for n in NAMES] for v in served[:8]])
    assert 0.3 < first.std() < 3.0


def test_default_population_is_pycmas(tmp_path):
    oracle = make_oracle(tmp_path, population_size=None, generations=1)
    served = run(oracle)
    expected = cma.CMAEvolutionStrategy(np.zeros(3), 1.0, {"verbose": -9}).popsize
    assert len(served) == expected == oracle.candidates_per_generation() == 7


def test_generation_told_only_when_all_end_in_any_order(tmp_path):
    in_order = make_oracle(tmp_path, "in_order", generations=2)
    reference = run(in_order)

    oracle = make_oracle(tmp_path, "shuffled", generations=2)
    trials = [oracle.create_trial(f"tuner{i}") for i in range(4)]
    assert [dict(t.hyperparameters.values) for t in trials] == reference[:4]
    # All four candidates are out: a fifth tuner must wait (IDLE), not get a new generation.
    assert oracle.create_trial("tuner4").status == "IDLE"
    for trial in reversed(trials[1:]):
        finish(oracle, trial, sphere(trial.hyperparameters.values))
        assert oracle.generation == 0
        assert oracle.create_trial("tuner4").status == "IDLE"
    finish(oracle, trials[0], sphere(trials[0].hyperparameters.values))
    assert oracle.generation == 1
    # Fitness was matched to candidates, not to arrival order: same next generation.
    nxt = oracle.create_trial("tuner4")
    assert dict(nxt.hyperparameters.values) == reference[4]


def test_failed_and_nan_trials_get_the_worst_fitness(tmp_path):
    oracle = make_oracle(tmp_path, generations=1)
    trials = [oracle.create_trial(f"t{i}") for i in range(4)]
    finish(oracle, trials[0], 3.0)
    finish(oracle, trials[1], float("nan"))  # KerasTuner: NaN score -> INVALID -> FAILED
    finish(oracle, trials[2], status="FAILED")  # e.g. a diverged candidate
    finish(oracle, trials[3], 1.0)
    [generation] = oracle.history
    assert generation["fitness"] == [3.0, None, None, 1.0]
    assert generation["failed"] == 2
    assert oracle.trials[trials[1].trial_id].status == "FAILED"
    assert oracle.summary()["failed"] == 2


def test_deliberate_failures_never_stop_the_search_but_crashes_do(tmp_path):
    oracle = make_oracle(tmp_path, generations=2)
    count = 0
    while True:
        trial = oracle.create_trial("t")
        if trial.status == "STOPPED":
            break
        finish(oracle, trial, status="FAILED")
        count += 1
    assert count == 8 and oracle.summary()["failed"] == 8

    crashing = make_oracle(tmp_path, "crash", generations=2)
    with pytest.raises(RuntimeError, match="3 trials in a row crashed"):
        for _ in range(3):
            trial = crashing.create_trial("t")
            trial.message = "Traceback: ZeroDivisionError"
            finish(crashing, trial, status="INVALID")


def test_prefilter_rejects_without_a_trial_and_counts(tmp_path):
    seen = []

    def keep_positive_a(values):
        seen.append(values["a"])
        return values["a"] > 0

    oracle = make_oracle(tmp_path, generations=3, prefilter=keep_positive_a)
    served = run(oracle)
    assert all(v["a"] > 0 for v in served)
    rejected = sum(a <= 0 for a in seen)
    assert rejected > 0 and len(served) + rejected == len(seen) == 12
    assert sum(g["rejected"] for g in oracle.history) == rejected == oracle.summary()["rejected"]
    for generation in oracle.history:
        for fitness, who in zip(generation["fitness"], generation["trial_ids"], strict=True):
            assert (fitness is None) == (who == "rejected")


def test_a_prefilter_that_rejects_everything_ends_the_search(tmp_path):
    oracle = make_oracle(tmp_path, generations=5, prefilter=lambda values: False)
    assert run(oracle) == []
    # CMA-ES sees flat (all worst) fitness and stops early; the search says why.
    assert 1 <= oracle.generation <= 5
    assert oracle.summary()["rejected"] == 4 * oracle.generation
    assert "tolflatfitness" in oracle.stop_reason or "ran 5" in oracle.stop_reason


def test_state_round_trip_mid_generation_then_continue(tmp_path):
    reference = run(make_oracle(tmp_path, "reference"))

    oracle = make_oracle(tmp_path, "resumed")
    served = []
    for _ in range(6):  # generation 1 done, generation 2 half served and half ended
        trial = oracle.create_trial("t")
        served.append(dict(trial.hyperparameters.values))
        finish(oracle, trial, sphere(trial.hyperparameters.values))
    running = oracle.create_trial("t")  # in flight when the process "dies"
    oracle.save()

    fresh = make_oracle(tmp_path, "resumed", seed=12345)  # the saved seed wins
    fresh.reload()
    saved, restored = oracle.get_state()["cmaes"], fresh.get_state()["cmaes"]
    # Pickles of equal objects need not be equal bytes: compare the rest, and the strategy's mean.
    assert {**saved, "strategy": None} == {**restored, "strategy": None}
    np.testing.assert_array_equal(fresh._es.mean, oracle._es.mean)
    # The trial that was running is retried first, with the same values.
    retried = fresh.create_trial("t")
    assert retried.trial_id == running.trial_id
    assert dict(retried.hyperparameters.values) == dict(running.hyperparameters.values)
    finish(fresh, retried, sphere(retried.hyperparameters.values))
    served += [dict(retried.hyperparameters.values), *run(fresh)]
    assert served == reference
    assert len(fresh.trials) == 12


def test_reload_repairs_a_kill_between_two_writes(tmp_path):
    oracle = make_oracle(tmp_path)
    trial = oracle.create_trial("t")
    oracle.save()
    # Killed after the trial's file said COMPLETED but before oracle.json did.
    oracle.update_trial(trial.trial_id, {"score": 2.0})
    trial.status = "COMPLETED"
    oracle.score_trial(trial)
    oracle._save_trial(trial)
    # ... and a trial file written by create_trial just before the kill.
    orphan = keras_tuner.engine.trial.Trial(space(), trial_id="9999", status="RUNNING")
    (tmp_path / "search" / "trial_9999").mkdir()
    orphan.save(str(tmp_path / "search" / "trial_9999" / "trial.json"))

    fresh = make_oracle(tmp_path)
    fresh.reload()
    assert "9999" not in fresh.trials and not (tmp_path / "search" / "trial_9999").exists()
    assert fresh._retry_queue == [] and fresh.end_order == [trial.trial_id]
    assert fresh.create_trial("t").trial_id != trial.trial_id  # not trained again


def test_fixed_hyperparameters_pass_through_and_other_kinds_are_refused(tmp_path):
    hp = space()
    hp.Fixed("num_classes", 10)
    oracle = CMAESOracle(OBJECTIVE, hyperparameters=hp, generations=1, population_size=2, seed=0)
    oracle._set_project_dir(str(tmp_path), "fixed")
    assert oracle.create_trial("t").hyperparameters.values["num_classes"] == 10

    bad = space()
    bad.Choice("activation", ["relu", "tanh"])
    oracle = CMAESOracle(hyperparameters=bad, generations=1, seed=0)
    oracle._set_project_dir(str(tmp_path), "bad")
    with pytest.raises(ValueError, match=r"activation \(Choice\)"):
        oracle.create_trial("t")

    single = keras_tuner.HyperParameters()
    single.Float("x", 0.0, 1.0)
    oracle = CMAESOracle(hyperparameters=single, generations=1, seed=0)
    oracle._set_project_dir(str(tmp_path), "single")
    with pytest.raises(ValueError, match=r"at least 2 hp\.Float"):
        oracle.create_trial("t")


def test_per_parameter_sigma_and_mean_serve_other_losses(tmp_path):
    hp = keras_tuner.HyperParameters()
    hp.Float("period", 1.0, 40.0)
    hp.Float("amplitude", 0.0, 1.0)
    oracle = CMAESOracle(
        OBJECTIVE,
        hyperparameters=hp,
        generations=1,
        population_size=30,
        sigma0=[5.0, 0.1],
        mean={"period": 20.0, "amplitude": 0.5},
        seed=3,
    )
    oracle._set_project_dir(str(tmp_path), "cyclic")
    values = run(oracle, objective=lambda v: v["period"])
    periods = np.array([v["period"] for v in values])
    amplitudes = np.array([v["amplitude"] for v in values])
    assert 2.0 < periods.std() < 10.0 and 0.03 < amplitudes.std() < 0.2
    assert abs(periods.mean() - 20.0) < 4.0 and abs(amplitudes.mean() - 0.5) < 0.1
    assert np.all((amplitudes >= 0) & (amplitudes <= 1))


@pytest.mark.parametrize(
    ("argument", "value"),
    [
        ("population_size", 1),
        ("generations", 0),
        ("max_trials", -1),
        ("sigma0", 0.0),
        ("sigma0", [1.0, float("nan")]),
        ("seed", -3),
        ("prefilter", "invariant"),
    ],
)
def test_bad_arguments_name_themselves(argument, value):
    with pytest.raises(ValueError, match=f"Invalid value for argument `{argument}`"):
        CMAESOracle(**{argument: value})


def test_failed_fitness_is_worst():
    assert FAILED_FITNESS == math.inf
