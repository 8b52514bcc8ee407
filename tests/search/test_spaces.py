"""TaylorGLOSpace at the reference's scale, its bounds, and TaylorGLOInvariant's violation."""

from __future__ import annotations

import json
import math

import keras_tuner
import numpy as np
import pytest

from metaloss.search import SearchTask, TaylorGLOInvariant, TaylorGLOSearch, TaylorGLOSpace
from metaloss.search.oracle import CMAESOracle
from metaloss.search.spaces import DEFAULT_THETA_BOUND, REFERENCE_SCALE, theta_names

TINY = SearchTask("spiral", "mlp:hidden=[16]", epochs=2, batch_size=64)
OBJECTIVE = keras_tuner.Objective("score", "min")
# The TaylorGLO reference code's shipped example in the paper's θ0..θ7 order, still without the
# factorials (the reference stores it as [θ2..θ7, θ0, θ1]).
EXAMPLE_NO_FACTORIALS = (-10.9408, 7.5216, 8.2896, 0.2415, 7.8726, 8.9666, 2.0184, 7.0513)
# The paper's polynomial writes ½θ3, ⅙θ4, ½θ6, ½θ7: multiply those coefficients by 2, 6, 2, 2.
EXAMPLE = tuple(v * f for v, f in zip(EXAMPLE_NO_FACTORIALS, (1, 1, 1, 2, 6, 1, 2, 2), strict=True))


def first_generation(space: TaylorGLOSpace, tmp_path, size: int = 400, **kwargs) -> np.ndarray:
    """The first generation of a CMA-ES search over ``space``, (size, 8), as trials get it."""
    hp = keras_tuner.HyperParameters()
    space.build(hp)
    oracle = CMAESOracle(
        OBJECTIVE,
        hyperparameters=hp,
        generations=1,
        population_size=size,
        sigma_scale=space.sigma_scale,
        seed=0,
        **kwargs,
    )
    oracle._set_project_dir(str(tmp_path), "first")
    # What create_trial hands each trial, without writing a trial file per candidate.
    answers = [oracle.populate_space(f"t{i}") for i in range(size)]
    assert all(a["status"] == "RUNNING" for a in answers)
    return np.array([[a["values"][n] for n in theta_names()] for a in answers])


def test_the_reference_example_is_inside_the_default_space():
    assert EXAMPLE[0] == pytest.approx(-10.9408)
    assert EXAMPLE[4] == pytest.approx(47.2356) and EXAMPLE[7] == pytest.approx(14.1026)
    hp = keras_tuner.HyperParameters()
    TaylorGLOSpace().build(hp)
    ranges = {h.name: (h.min_value, h.max_value) for h in hp.space}
    for value, name in zip(EXAMPLE, theta_names(), strict=True):
        assert ranges[name][0] < value < ranges[name][1]
    # The old ±10 bound excluded it.
    assert max(abs(v) for v in EXAMPLE) > 10.0
    assert DEFAULT_THETA_BOUND >= 1e3


def test_first_generation_spreads_at_the_reference_scale(tmp_path):
    size = 400
    thetas = first_generation(TaylorGLOSpace(), tmp_path, size)
    # The reference: σ0 = 1.2 on the factorial-free vector, i.e. θ_i ~ N(0, (1.2 f_i)²).
    expected = 1.2 * np.array([1, 1, 1, 2, 6, 1, 2, 2], dtype=float)
    spread = thetas.std(axis=0, ddof=1)
    # The sample std of n normal draws has relative standard error 1/sqrt(2(n - 1)).
    relative_error = 1.0 / math.sqrt(2 * (size - 1))
    np.testing.assert_allclose(spread, expected, rtol=4 * relative_error)
    # Its mean is zero, to 4 standard errors σ_i / sqrt(n).
    assert np.all(np.abs(thetas.mean(axis=0)) < 4 * expected / math.sqrt(size))
    # θ4 spreads 6 times as far as θ0 (a ratio of two such stds: relative error √2 times).
    assert spread[4] / spread[0] == pytest.approx(6.0, rel=4 * math.sqrt(2) * relative_error)


def test_an_isotropic_scale_gives_the_old_search(tmp_path):
    size = 400
    thetas = first_generation(TaylorGLOSpace(scale=(1.0,) * 8), tmp_path, size)
    relative_error = 1.0 / math.sqrt(2 * (size - 1))
    np.testing.assert_allclose(thetas.std(axis=0, ddof=1), 1.2, rtol=4 * relative_error)


def test_samples_around_the_reference_example_are_not_pulled_by_bounds(tmp_path):
    # With pycma's bounds, samples near a bound are transformed and their mean moves inwards
    # (pycma issue #229); the default space searches unbounded, so they stay centred.
    size = 400
    thetas = first_generation(TaylorGLOSpace(), tmp_path, size, mean=list(EXAMPLE))
    expected = 1.2 * np.array([1, 1, 1, 2, 6, 1, 2, 2], dtype=float)
    assert np.all(np.abs(thetas.mean(axis=0) - EXAMPLE) < 4 * expected / math.sqrt(size))
    assert thetas[:, 4].max() > 47.0 and thetas[:, 0].min() < -12.0


def test_the_default_space_gives_pycma_no_bounds():
    hp = keras_tuner.HyperParameters()
    TaylorGLOSpace().build(hp)
    oracle = CMAESOracle(OBJECTIVE, hyperparameters=hp, generations=1, seed=0)
    oracle.populate_space("t")
    assert not oracle._es.boundary_handler.has_bounds()


def test_a_near_bound_is_still_enforced(tmp_path):
    # ±3 lies within 100 steps of zero: pycma's bounds keep every candidate inside.
    thetas = first_generation(TaylorGLOSpace(bound=3.0), tmp_path, 200)
    assert np.all(np.abs(thetas) <= 3.0)
    assert np.abs(thetas[:, 4]).max() > 2.5  # θ4 (σ = 7.2) would often leave it otherwise


def test_the_tuner_searches_at_the_reference_scale_and_records_its_settings(tmp_path):
    search = TaylorGLOSearch(
        TINY, generations=1, population_size=400, seed=0, tensorboard=False, directory=tmp_path
    )
    assert search.oracle.sigma_scale == dict(zip(theta_names(), REFERENCE_SCALE, strict=True))
    answers = [search.oracle.populate_space(f"t{i}") for i in range(400)]
    kept = np.array(
        [[a["values"][n] for n in theta_names()] for a in answers if a["status"] == "RUNNING"]
    )
    # The invariant rejects some; the kept ones still spread far wider along θ4 than θ0.
    assert len(kept) > 100
    assert kept[:, 4].std() > 3 * kept[:, 0].std()
    saved = json.loads((tmp_path / "search.json").read_text())
    assert saved["sigma0"] == 1.2 and saved["rejected"] == "worst"

    ranked = TaylorGLOSearch(
        TINY, generations=1, rejected="ranked", directory=tmp_path / "ranked", tensorboard=False
    )
    assert ranked.oracle.rejected == "ranked" and ranked.settings["rejected"] == "ranked"
    with pytest.raises(ValueError, match="argument `rejected`"):
        TaylorGLOSearch(TINY, generations=1, rejected="drop", directory=tmp_path / "bad")


def test_a_search_saved_before_the_reference_scale_resumes(tmp_path):
    """A search saved with the old ±10, isotropic space and no rejected rule resumes as it was."""
    old_space = {"bound": 10.0, "scale": (1.0,) * 8}

    def serve(search, count):
        served = []
        for _ in range(count):
            trial = search.oracle.create_trial("t")
            assert trial.status == "RUNNING"
            served.append(dict(trial.hyperparameters.values))
            search.oracle.update_trial(trial.trial_id, {"val_accuracy": 0.5})
            trial.status = "COMPLETED"
            search.oracle.end_trial(trial)
        search.save()
        return served

    def old_search(directory):
        return TaylorGLOSearch(
            TINY,
            generations=3,
            population_size=5,
            seed=0,
            hypermodel=TaylorGLOSpace(**old_space),
            tensorboard=False,
            directory=directory,
        )

    reference = serve(old_search(tmp_path / "reference"), 6)

    directory = tmp_path / "old"
    served = serve(old_search(directory), 3)
    for name, keys in (("search.json", ["rejected"]), ("trials/oracle.json", None)):
        path = directory / name
        state = json.loads(path.read_text())
        if keys:
            for key in keys:
                del state[key]
        else:
            del state["cmaes"]["violations"], state["cmaes"]["rejected"]
        path.write_text(json.dumps(state))

    resumed = TaylorGLOSearch(  # the saved rule wins: "worst", the only one there was
        TINY,
        generations=3,
        population_size=5,
        seed=0,
        rejected="ranked",
        tensorboard=False,
        directory=directory,
    )
    assert resumed.oracle.rejected == "worst" and resumed.settings["rejected"] == "worst"
    assert resumed.settings["sigma0"] == 1.2
    served += serve(resumed, 3)
    assert served == reference
    assert all(abs(v) <= 10.0 for values in served for v in values.values())


@pytest.mark.parametrize(
    ("argument", "value", "expected"),
    [
        ("bound", 0.0, "a positive finite number"),
        ("bound", math.inf, "a positive finite number"),
        ("bound", True, "a positive finite number"),
        ("scale", (1.0,) * 7, "8 positive finite numbers"),
        ("scale", (1.0,) * 7 + (0.0,), "8 positive finite numbers"),
        ("scale", "wide", "8 positive finite numbers"),
    ],
)
def test_bad_space_arguments_say_what_was_expected_and_received(argument, value, expected):
    with pytest.raises(ValueError) as error:
        TaylorGLOSpace(**{argument: value})
    assert str(error.value) == (
        f"Invalid value for argument `{argument}`. Expected {expected}. "
        f"Received: {argument}={value!r}"
    )


@pytest.mark.parametrize(
    ("theta", "violation"),
    [
        # θ2 = 1: c1 = 1, so the push (n - 2)·c1 = 8 against no pull: margin -8.
        ((0, 0, 1, 0, 0, 0, 0, 0), 8.0),
        # θ2 = 0.5, θ5 = 1: c1 = 0.5, c_y = 1: margin 1 - 8 · 0.5 = -3.
        ((0, 0, 0.5, 0, 0, 1, 0, 0), 3.0),
        # MSE up to a constant (θ3 = -2, θ5 = 2): c_y = 2, c_h = -2: margin 2 + 8 · 2/10 > 0.
        ((0, 0, 0, -2, 0, 2, 0, 0), 0.0),
    ],
)
def test_invariant_violation_is_the_margins_shortfall(theta, violation):
    invariant = TaylorGLOInvariant(10)
    values = dict(zip(theta_names(), theta, strict=True))
    assert invariant.violation(values) == pytest.approx(violation, abs=1e-12)
    assert invariant(values) == (violation == 0.0)
