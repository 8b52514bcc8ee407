"""pycma's start from a KerasTuner search space: the searched parameters, the initial mean, and
sampling seeded per purpose (so that a seed gives the same candidates, resumed or not)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import cma
import keras_tuner
import numpy as np

from metaloss.losses._base import invalid_value

__all__ = [
    "GlobalNumpySeed",
    "derived_seed",
    "global_randn",
    "initial_mean",
    "per_parameter_scales",
    "searched_floats",
    "start_strategy",
]


def derived_seed(*words: int) -> int:
    """A 31-bit seed derived from the search seed and a purpose (a generation number, ...)."""
    return int(np.random.SeedSequence(list(words)).generate_state(1)[0] % (2**31 - 2)) + 1


def global_randn(*shape):
    """pycma's sampler. pycma's default, ``np.random.randn``, is a bound method that a pickle
    copies with its generator; this module function pickles by name and samples from the global
    generator, which :class:`GlobalNumpySeed` seeds per generation."""
    return np.random.randn(*shape)  # noqa: NPY002


class GlobalNumpySeed:
    """Seeds NumPy's global generator (which pycma samples from) and restores it afterwards."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    # pycma draws from the legacy global generator, so that is the one to seed.
    def __enter__(self):
        self._saved = np.random.get_state()  # noqa: NPY002
        np.random.seed(self.seed)  # noqa: NPY002

    def __exit__(self, *exc_info):
        np.random.set_state(self._saved)  # noqa: NPY002


def searched_floats(hyperparameters: keras_tuner.HyperParameters) -> list:
    """The ``hp.Float`` entries CMA-ES searches (``hp.Fixed`` ones pass through); at least 2."""
    searched, others = [], []
    for hp in hyperparameters.space:
        if isinstance(hp, keras_tuner.engine.hyperparameters.Float):
            searched.append(hp)
        elif not isinstance(hp, keras_tuner.engine.hyperparameters.Fixed):
            others.append(f"{hp.name} ({type(hp).__name__})")
    if others:
        raise ValueError(
            "CMAESOracle searches hp.Float hyperparameters only (hp.Fixed ones pass "
            f"through). Received: {', '.join(others)}"
        )
    if len(searched) < 2:
        raise ValueError(
            "CMAESOracle needs at least 2 hp.Float hyperparameters (pycma does not run in "
            "one dimension; use keras_tuner.BayesianOptimizationOracle there). Received: "
            f"{[hp.name for hp in searched]}"
        )
    return searched


def initial_mean(searched: list, mean: Sequence[float] | Mapping[str, float] | None) -> list:
    """The CMA-ES mean: ``mean`` checked against ``searched``, or zero (the middle of a range
    that excludes zero) when `None`."""
    names = [hp.name for hp in searched]
    if mean is None:
        return [
            0.0 if hp.min_value <= 0.0 <= hp.max_value else (hp.min_value + hp.max_value) / 2
            for hp in searched
        ]
    if isinstance(mean, Mapping):
        missing = sorted(set(names) - set(mean))
        if missing:
            raise invalid_value("mean", f"a value for every parameter {names}", mean)
        values = [mean[name] for name in names]
    else:
        values = list(mean)
    if len(values) != len(names) or not all(math.isfinite(float(v)) for v in values):
        raise invalid_value("mean", f"{len(names)} finite numbers, one per {names}", mean)
    return [float(v) for v in values]


def per_parameter_scales(names: list[str], sigma_scale) -> np.ndarray:
    """``sigma_scale`` (a sequence or ``{name: scale}``) in the order of ``names``; all 1 when
    `None`."""
    if sigma_scale is None:
        return np.ones(len(names))
    if isinstance(sigma_scale, Mapping):
        missing = sorted(set(names) - set(sigma_scale))
        if missing:
            raise invalid_value("sigma_scale", f"a scale for every parameter {names}", sigma_scale)
        return np.array([float(sigma_scale[name]) for name in names])
    scales = np.asarray(sigma_scale, dtype=np.float64)
    if scales.shape != (len(names),):
        raise invalid_value("sigma_scale", f"{len(names)} numbers, one per {names}", sigma_scale)
    return scales


def start_strategy(
    searched: list,
    mean: list,
    sigma0,
    sigma_scale,
    *,
    seed: int,
    population_size: int | None,
    far_bound_steps: float,
) -> cma.CMAEvolutionStrategy:
    """pycma's strategy over the searched parameters, with initial steps
    ``σ_i = sigma0_i · sigma_scale_i``.

    pycma gets ``bounds`` only for parameters whose range comes within ``far_bound_steps``
    initial steps of the mean (elsewhere a bound never bites, and near one pycma's bound
    transformation biases the samples and the mean: pycma issue #229). A scalar ``sigma0`` stays
    pycma's σ, the scales going to ``CMA_stds``, so that the strategy's ``sigma`` is in
    ``sigma0``'s units.
    """
    sigmas = np.atleast_1d(np.asarray(sigma0, dtype=np.float64))
    if sigmas.size not in (1, len(searched)):
        raise invalid_value("sigma0", f"one number or {len(searched)} numbers", sigma0)
    scales = per_parameter_scales([hp.name for hp in searched], sigma_scale)
    steps = sigmas * scales
    near = [
        min(m - hp.min_value, hp.max_value - m) < far_bound_steps * step
        for hp, m, step in zip(searched, mean, steps, strict=True)
    ]
    options = {
        "seed": seed,
        "randn": global_randn,
        # Validation accuracies tie often (small validation sets, chance-level starts):
        # pycma's flat-fitness and fitness-tolerance stops would end a search early.
        "tolflatfitness": 10**9,
        "tolfun": 0.0,
        "tolfunhist": 0.0,
        "verbose": -9,
        "verb_log": 0,
        "verb_disp": 0,
    }
    if any(near):
        options["bounds"] = [
            [float(hp.min_value) if n else None for hp, n in zip(searched, near, strict=True)],
            [float(hp.max_value) if n else None for hp, n in zip(searched, near, strict=True)],
        ]
    if population_size is not None:
        options["popsize"] = population_size
    if sigmas.size > 1:
        options["CMA_stds"] = list(steps)
    elif sigma_scale is not None:
        options["CMA_stds"] = list(scales)
    with GlobalNumpySeed(seed):
        return cma.CMAEvolutionStrategy(mean, 1.0 if sigmas.size > 1 else float(sigmas[0]), options)
