"""CMAESOracle driven directly, as KerasTuner's tuners drive it (create/update/end trial)."""

from __future__ import annotations

import json
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


def test_only_ranges_within_reach_are_given_to_pycma_as_bounds(tmp_path):
    hp = keras_tuner.HyperParameters()
    hp.Float("near", -10.0, 10.0)  # 0.5 initial steps either side: pycma keeps samples inside
    hp.Float("far", -1e4, 1e4)  # 500 steps: searched unbounded, samples undistorted
    size = 400
    oracle = CMAESOracle(
        OBJECTIVE, hyperparameters=hp, generations=1, population_size=size, sigma0=20.0, seed=0
    )
    oracle._set_project_dir(str(tmp_path), "mixed")
    answers = [oracle.populate_space(f"t{i}") for i in range(size)]
    near = np.array([a["values"]["near"] for a in answers])
    far = np.array([a["values"]["far"] for a in answers])
    assert np.all(np.abs(near) <= 10.0) and near.std() < 10.0
    # N(0, 20²): sample std within 4 standard errors (relative 1/sqrt(2(n - 1))).
    assert far.std(ddof=1) == pytest.approx(20.0, rel=4 / math.sqrt(2 * (size - 1)))
    assert abs(far.mean()) < 4 * 20.0 / math.sqrt(size)
    bounds = oracle._es.boundary_handler
    assert list(bounds.get_bounds("lower", 2)) == [-10.0, -math.inf]
    assert list(bounds.get_bounds("upper", 2)) == [10.0, math.inf]


def test_a_candidate_outside_an_unbounded_range_is_rejected(tmp_path, monkeypatch, told):
    from metaloss.search import oracle as oracle_module

    # Make ±10 count as far for sigma0 = 6, so that candidates do leave it.
    monkeypatch.setattr(oracle_module, "FAR_BOUND_STEPS", 0.5)
    oracle = make_oracle(tmp_path, generations=2, population_size=8, sigma0=6.0, rejected="ranked")
    served = served_and_failed(oracle, sphere)
    outside = [c for candidates, _ in told for c in candidates if any(abs(v) > 10.0 for v in c)]
    assert outside and all(abs(v) <= 10.0 for values in served for v in values.values())
    assert sum(g["rejected"] for g in oracle.history) == len(outside)
    assert len(served) + len(outside) == 16
    for candidates, fitness in told:  # no violation to rank them by: the worst fitness
        for c, f in zip(candidates, fitness, strict=True):
            assert (f == math.inf) == any(abs(v) > 10.0 for v in c)


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
        ("sigma_scale", [1.0, -2.0]),
        ("sigma_scale", {"a": math.inf}),
        ("rejected", "best"),
        ("rejected", None),
    ],
)
def test_bad_arguments_name_themselves(argument, value):
    with pytest.raises(ValueError, match=f"Invalid value for argument `{argument}`"):
        CMAESOracle(**{argument: value})


def test_a_bad_rejected_rule_says_what_was_expected_and_received():
    with pytest.raises(ValueError) as error:
        CMAESOracle(rejected="ignore")
    assert str(error.value) == (
        "Invalid value for argument `rejected`. Expected one of 'worst', 'ranked'. "
        "Received: rejected='ignore'"
    )


def test_failed_fitness_is_worst():
    assert FAILED_FITNESS == math.inf


# Rejected candidates: "worst" and "ranked" ----------------------------------------------------


class NegativeA:
    """Rejects a candidate whose ``a`` is negative; its violation is ``-a``."""

    def __call__(self, values):
        return values["a"] >= 0

    def violation(self, values):
        return max(0.0, -values["a"])


@pytest.fixture
def told(monkeypatch):
    """Every (solutions, fitness) that CMA-ES is told, in order."""
    calls = []
    original = cma.CMAEvolutionStrategy.tell

    def spy(self, solutions, function_values, *args, **kwargs):
        calls.append(([list(map(float, x)) for x in solutions], list(function_values)))
        return original(self, solutions, function_values, *args, **kwargs)

    monkeypatch.setattr(cma.CMAEvolutionStrategy, "tell", spy)
    return calls


def served_and_failed(oracle, score, failing=()):
    """Runs ``oracle``; trains each kept candidate to ``score(values)``, or fails the trials
    whose serving index is in ``failing``. Returns the served values."""
    served = []
    while True:
        trial = oracle.create_trial("t")
        if trial.status == "STOPPED":
            return served
        values = dict(trial.hyperparameters.values)
        if len(served) in failing:
            finish(oracle, trial, status="FAILED")
        else:
            finish(oracle, trial, score(values))
        served.append(values)


@pytest.mark.parametrize("accuracy_like", [True, False])
def test_ranked_tells_rejected_candidates_their_violation_above_every_trained(
    tmp_path, told, accuracy_like
):
    # A val_accuracy-like fitness lies in [-1, 0]; the sphere's reaches far above 1.
    score = (lambda v: -0.25 - 0.5 * abs(math.tanh(v["b"]))) if accuracy_like else sphere
    oracle = make_oracle(
        tmp_path, generations=3, population_size=6, prefilter=NegativeA(), rejected="ranked"
    )
    served = served_and_failed(oracle, score, failing={1})
    assert len(told) == 3
    failed = served[1]
    for (candidates, fitness), generation in zip(told, oracle.history, strict=True):
        kept = [c for c in candidates if c[0] >= 0]
        trained = [
            score(dict(zip(NAMES, c, strict=True))) for c in kept if c != list(failed.values())
        ]
        # By hand: c = max(1, highest trained fitness + 1); a rejected candidate is c + (-a).
        ceiling = max(1.0, max(trained) + 1.0) if trained else 1.0
        if accuracy_like:
            assert ceiling == 1.0
        expected = [
            ceiling - c[0] if c[0] < 0 else (math.inf if c == list(failed.values()) else None)
            for c in candidates
        ]
        for e, f, c in zip(expected, fitness, candidates, strict=True):
            if e is None:
                assert f == pytest.approx(score(dict(zip(NAMES, c, strict=True))), rel=1e-12)
            else:
                assert f == pytest.approx(e, rel=1e-12)
        # Ordered as the docstring says: trained < rejected (by violation) < failed.
        rejected = sorted((-c[0], f) for c, f in zip(candidates, fitness, strict=True) if c[0] < 0)
        assert [f for _, f in rejected] == sorted(f for _, f in rejected)
        finite_trained = [f for c, f in zip(candidates, fitness, strict=True) if c[0] >= 0]
        finite_trained = [f for f in finite_trained if math.isfinite(f)]
        if rejected and finite_trained:
            assert max(finite_trained) < min(f for _, f in rejected)
        # The history still shows rejected candidates as rejected, not as scores.
        for value, who, c in zip(
            generation["fitness"], generation["trial_ids"], candidates, strict=True
        ):
            assert (who == "rejected") == (c[0] < 0)
            if who == "rejected":
                assert value is None
        assert generation["violations"] == [-c[0] if c[0] < 0 else None for c in candidates]
        assert generation["rejected"] == sum(c[0] < 0 for c in candidates)
    assert sum(g["rejected"] for g in oracle.history) > 0
    assert sum(g["failed"] for g in oracle.history) == 1


def test_worst_tells_rejected_candidates_the_worst_fitness(tmp_path, told):
    oracle = make_oracle(tmp_path, generations=3, population_size=6, prefilter=NegativeA())
    assert oracle.rejected == "worst"
    served_and_failed(oracle, sphere)
    rejected = 0
    for candidates, fitness in told:
        for c, f in zip(candidates, fitness, strict=True):
            if c[0] < 0:
                assert f == math.inf
                rejected += 1
            else:
                assert f == pytest.approx(sphere(dict(zip(NAMES, c, strict=True))), rel=1e-12)
    assert rejected > 0


def test_a_bool_prefilter_gives_no_violation_so_ranked_tells_the_worst(tmp_path, told):
    oracle = make_oracle(
        tmp_path, generations=2, prefilter=lambda v: v["a"] >= 0, rejected="ranked"
    )
    served_and_failed(oracle, sphere)
    fitness = [
        f for candidates, fs in told for c, f in zip(candidates, fs, strict=True) if c[0] < 0
    ]
    assert fitness and all(f == math.inf for f in fitness)


def test_ranked_moves_cmaes_towards_the_feasible_side(tmp_path):
    class AboveFour:
        def __call__(self, values):
            return values["a"] >= 4.0

        def violation(self, values):
            return max(0.0, 4.0 - values["a"])

    # From a = 0 with sigma0 = 1.2, a >= 4 is a 3.3-sigma event (~4 in 10,000 samples).
    oracle = make_oracle(
        tmp_path,
        generations=15,
        population_size=8,
        prefilter=AboveFour(),
        rejected="ranked",
    )
    served = served_and_failed(oracle, sphere)
    assert served and all(v["a"] >= 4.0 for v in served)
    first = np.mean([c[0] for c in oracle.history[0]["candidates"]])
    last = np.mean([c[0] for c in oracle.history[-1]["candidates"]])
    assert last > first + 2.0


def serve_until(oracle, done) -> list[dict]:
    """Serves candidates and trains them (``sphere``) until ``done(oracle)``; the values."""
    served = []
    while not done(oracle):
        trial = oracle.create_trial("t")
        assert trial.status == "RUNNING"
        served.append(dict(trial.hyperparameters.values))
        finish(oracle, trial, sphere(trial.hyperparameters.values))
    return served


def rejected_in_flight(oracle) -> bool:
    """Whether the generation in flight has rejected candidates."""
    return oracle.summary()["rejected"] > sum(g["rejected"] for g in oracle.history)


@pytest.mark.parametrize("kill", ["generation boundary", "mid generation"])
def test_ranked_search_resumes_to_the_same_candidates(tmp_path, kill):
    def make(name, **kwargs):
        kwargs.setdefault("rejected", "ranked")
        return make_oracle(
            tmp_path, name, generations=4, population_size=6, prefilter=NegativeA(), **kwargs
        )

    reference = run(make("reference"))

    oracle = make("resumed")
    running = None
    if kill == "generation boundary":  # generation 2 told, generation 3 not asked yet
        served = serve_until(oracle, lambda o: o.generation == 2)
    else:  # generation 2 in flight: some of it rejected, one candidate running
        served = serve_until(oracle, lambda o: o.generation >= 1 and rejected_in_flight(o))
        running = oracle.create_trial("t")
    saved = oracle.get_state()["cmaes"]
    assert saved["rejected"] == "ranked"

    fresh = make("resumed", rejected="worst")  # the saved rule wins, as the saved seed does
    fresh.reload()
    assert fresh.rejected == "ranked"
    restored = fresh.get_state()["cmaes"]
    assert {**saved, "strategy": None} == {**restored, "strategy": None}
    if running is not None:
        retried = fresh.create_trial("t")
        assert retried.trial_id == running.trial_id
        served.append(dict(retried.hyperparameters.values))
        finish(fresh, retried, sphere(retried.hyperparameters.values))
    served += run(fresh)
    assert served == reference


def test_a_state_saved_before_rejected_rules_resumes_as_worst(tmp_path, told):
    reference = run(make_oracle(tmp_path, "reference", prefilter=NegativeA()))
    reference_told = list(told)

    oracle = make_oracle(tmp_path, "old", prefilter=NegativeA())
    served = serve_until(oracle, lambda o: o.generation >= 1 and rejected_in_flight(o))
    # Strip what this version added: the file a search saved before it looks like this.
    path = tmp_path / "old" / "oracle.json"
    state = json.loads(path.read_text())
    del state["cmaes"]["violations"], state["cmaes"]["rejected"]
    path.write_text(json.dumps(state))

    fresh = make_oracle(tmp_path, "old", prefilter=NegativeA(), rejected="ranked")
    fresh.reload()
    assert fresh.rejected == "worst"
    served += run(fresh)
    assert served == reference
    # And CMA-ES was told the same as in the uninterrupted run.
    assert told[len(reference_told) :] == reference_told
