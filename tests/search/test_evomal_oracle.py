"""EvoMALOracle driven directly, as KerasTuner's tuners drive it (create/update/end trial)."""

from __future__ import annotations

import json
import math
import random

import keras_tuner
import pytest

from metaloss.losses._expression import parse_expression
from metaloss.search._pycma import derived_seed
from metaloss.search.evomal.oracle import EXPRESSION, EvoMALOracle
from metaloss.search.evomal.trees import initial_population, next_generation

OBJECTIVE = keras_tuner.Objective("score", "max")


def space() -> keras_tuner.HyperParameters:
    hp = keras_tuner.HyperParameters()
    hp.Fixed(EXPRESSION, "neg(mul(y, log(f)))")
    return hp


def make_oracle(tmp_path, name="search", **kwargs) -> EvoMALOracle:
    kwargs.setdefault("generations", 3)
    kwargs.setdefault("population_size", 6)
    kwargs.setdefault("seed", 0)
    oracle = EvoMALOracle(OBJECTIVE, hyperparameters=space(), **kwargs)
    oracle._set_project_dir(str(tmp_path), name)
    oracle.verbose = 0
    return oracle


def score(expression: str) -> float:
    """A deterministic stand-in for validation accuracy (higher is better)."""
    return 1.0 / (1.0 + len(expression))


def finish(oracle, trial, value=None, status="COMPLETED"):
    if value is not None:
        oracle.update_trial(trial.trial_id, {"score": value})
    trial.status = status
    oracle.end_trial(trial)


def run(oracle, *, stop_after=None, tuner_id="tuner0"):
    """Runs the oracle with one tuner (to its end, or ``stop_after`` trials); the served
    expressions in order."""
    served = []
    while stop_after is None or len(served) < stop_after:
        trial = oracle.create_trial(tuner_id)
        if trial.status == "STOPPED":
            break
        assert trial.status == "RUNNING"
        expression = trial.hyperparameters.values[EXPRESSION]
        served.append(expression)
        finish(oracle, trial, score(expression))
    return served


class SameLength:
    """A stand-in equivalence: expressions of the same length are 'equivalent'."""

    def __init__(self):
        self.archive = []

    def add(self, expression):
        self.archive.append(expression)

    def match(self, expression):
        return next((e for e in self.archive if len(e) == len(expression)), None)


def test_generations_are_the_genetic_programming_populations(tmp_path):
    oracle = make_oracle(tmp_path, elitism_rate=0.0)
    served = run(oracle)
    history = oracle.history
    assert len(history) == 3 and oracle.stop_reason == "ran 3 generations"
    # Generation 0: ramped half-and-half from the generation's own seed.
    first = initial_population(6, random.Random(derived_seed(0, 1, 0)))
    assert history[0]["candidates"] == first
    # Generation 1: the operators applied to generation 0 with its scores.
    expected = next_generation(
        [(e, score(e)) for e in first], random.Random(derived_seed(0, 1, 1)), elitism_rate=0.0
    )
    assert history[1]["candidates"] == expected
    # Every trained expression is a valid expression, served as a string.
    assert all(isinstance(e, str) and parse_expression(e) for e in served)
    trained = [
        e
        for g in history
        for e, who in zip(g["candidates"], g["trial_ids"], strict=False)
        if who != "reused"
    ]
    assert served == trained


def test_same_seed_same_search_and_zero_is_an_ordinary_seed(tmp_path):
    first = run(make_oracle(tmp_path, "a", seed=0))
    again = run(make_oracle(tmp_path, "b", seed=0))
    other = run(make_oracle(tmp_path, "c", seed=1))
    assert first == again and first != other


def test_elites_and_repeated_expressions_reuse_their_score_untrained(tmp_path):
    oracle = make_oracle(tmp_path, elitism_rate=0.2)  # ceil(0.2 · 6) = 2 elites
    run(oracle)
    later = oracle.history[1]
    assert later["trial_ids"][:2] == ["reused", "reused"]
    best_two = sorted(oracle.history[0]["candidates"], key=score, reverse=True)[:2]
    assert later["candidates"][:2] == best_two
    assert later["fitness"][:2] == [-score(e) for e in best_two]
    summary = oracle.summary()
    assert summary["reused"] == sum(g["reused"] for g in oracle.history) >= 4
    # A reused candidate is not a trial: trials = candidates - reused - rejected.
    candidates = sum(len(g["candidates"]) for g in oracle.history)
    assert summary["trials_done"] == candidates - summary["reused"] - summary["rejected"]


def test_equivalent_expressions_reuse_the_first_ones_score(tmp_path):
    equivalence = SameLength()
    oracle = make_oracle(tmp_path, equivalence=equivalence, elitism_rate=0.0)
    run(oracle)
    scored = {}
    for generation in oracle.history:
        for expression, who, fitness in zip(
            generation["candidates"], generation["trial_ids"], generation["fitness"], strict=False
        ):
            match = next((e for e in scored if len(e) == len(expression)), None)
            if who == "reused":
                assert match is not None and fitness == -score(match)
            else:
                assert match is None and fitness == -score(expression)
                scored[expression] = fitness
    assert oracle.summary()["reused"] > 0


def test_rejected_expressions_are_not_trained(tmp_path):
    oracle = make_oracle(tmp_path, prefilter=lambda values: "log" in values[EXPRESSION])
    served = run(oracle)
    assert served and all("log" in e for e in served)
    rejected = sum(g["rejected"] for g in oracle.history)
    assert rejected > 0 and oracle.summary()["rejected"] == rejected
    for generation in oracle.history:
        for expression, who in zip(generation["candidates"], generation["trial_ids"], strict=False):
            assert (who == "rejected") == ("log" not in expression)


@pytest.mark.parametrize("stop_after", [1, 7, 11])
def test_a_resumed_search_proposes_what_the_uninterrupted_one_would(tmp_path, stop_after):
    whole = run(make_oracle(tmp_path, "whole", equivalence=SameLength()))
    first = make_oracle(tmp_path, "cut", equivalence=SameLength())
    part = run(first, stop_after=stop_after)
    # A fresh process: a new oracle (and a new, empty equivalence archive) reloads the state.
    resumed = make_oracle(tmp_path, "cut", equivalence=SameLength())
    resumed.reload()
    assert part + run(resumed) == whole
    state = json.loads((tmp_path / "cut" / "oracle.json").read_text())
    assert all(isinstance(e, str) for e in state["evomal"]["scores"])


def test_failed_trials_rank_last_and_are_not_a_crash(tmp_path):
    oracle = make_oracle(tmp_path, generations=2, elitism_rate=0.0)
    trial = oracle.create_trial("tuner0")
    finish(oracle, trial, status="FAILED")
    run(oracle)
    first = oracle.history[0]
    assert first["fitness"][0] is None and first["failed"] == 1
    # The next generation was bred with the failed expression scored -inf (last).
    scored = [(e, -math.inf if i == 0 else score(e)) for i, e in enumerate(first["candidates"])]
    expected = next_generation(scored, random.Random(derived_seed(0, 1, 1)), elitism_rate=0.0)
    assert oracle.history[1]["candidates"] == expected


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"population_size": 1}, "population_size"),
        ({"crossover_rate": 1.5}, "crossover_rate"),
        ({"crossover_rate": 0.8, "mutation_rate": 0.3}, "mutation_rate"),
        ({"prefilter": "yes"}, "prefilter"),
        ({"equivalence": object()}, "equivalence"),
        ({"seed": -1}, "seed"),
        ({"generations": 0}, "generations"),
    ],
)
def test_invalid_arguments_name_the_argument(kwargs, argument):
    with pytest.raises(ValueError, match=f"argument `{argument}`"):
        EvoMALOracle(OBJECTIVE, hyperparameters=space(), **kwargs)
