"""pycma's start from a KerasTuner search space: the searched parameters, the initial mean, and
sampling seeded per purpose (so that a seed gives the same candidates, resumed or not)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import keras_tuner
import numpy as np

from metaloss.losses._base import invalid_value

__all__ = ["GlobalNumpySeed", "derived_seed", "global_randn", "initial_mean", "searched_floats"]


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
