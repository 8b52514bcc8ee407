"""A KerasTuner oracle that evolves loss expressions by genetic programming (EvoMAL).

Each generation is a population of expression strings (:mod:`metaloss.search.evomal.trees`):
the first by ramped half-and-half, every later one by tournaments, one-point crossover, uniform
subtree mutation and elitism from the one before, scored by the trials. A trial's value is the
expression string itself (hyperparameter ``expression``), so KerasTuner's state files, resuming
and its gRPC chief/worker mode carry it as they carry TaylorGLO's numbers; the generation
bookkeeping (serving, idling, abandoning silent trials, resuming) is
:class:`~metaloss.search.generational.GenerationalOracle`'s, shared with CMA-ES.

Two screens run before a candidate is trained, both EvoMAL's:

- ``prefilter(values) -> bool`` (the rejection protocol): a rejected expression gets the worst
  fitness untrained;
- ``equivalence`` (gradient equivalence): an object with ``add(expression)`` and
  ``match(expression) -> expression | None``; an expression equivalent to one already scored
  reuses that one's fitness untrained. Elites, copied unchanged, always do.

The random draws of generation ``g`` come from ``random.Random`` seeded by the search seed and
``g``, so a resumed search proposes what the uninterrupted one would have.

References:
    Raymond, Chen, Xue, Zhang, *Learning Symbolic Model-Agnostic Loss Functions via
    Meta-Learning*, IEEE TPAMI 2023, arXiv 2209.08907. Koza, *Genetic Programming* (1992).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import keras_tuner

from metaloss.losses._base import invalid_value
from metaloss.search._pycma import derived_seed
from metaloss.search.evomal.trees import (
    DEFAULT_CROSSOVER_RATE,
    DEFAULT_ELITISM_RATE,
    DEFAULT_INIT_HEIGHTS,
    DEFAULT_MAX_HEIGHT,
    DEFAULT_MUTATION_RATE,
    DEFAULT_TOURNAMENT_SIZE,
    initial_population,
    next_generation,
)
from metaloss.search.generational import FAILED_FITNESS, GenerationalOracle

__all__ = ["DEFAULT_GENERATIONS", "DEFAULT_POPULATION_SIZE", "EXPRESSION", "EvoMALOracle"]

#: EvoMAL's published budgets (its MNIST configuration).
DEFAULT_POPULATION_SIZE = 25
DEFAULT_GENERATIONS = 50
#: The hyperparameter that holds a trial's expression string.
EXPRESSION = "expression"


class EvoMALOracle(GenerationalOracle):
    """Genetic programming over loss expressions, one generation at a time.

    Args:
        objective: what ``run_trial`` reports, as in KerasTuner. Defaults to `None`.
        max_trials: trained trials at most. Defaults to `None`.
        hyperparameters: the search space; it must declare ``expression`` (an ``hp.Fixed``
            string, the tuner's hypermodel does). Defaults to `None`.
        generations: generations at most. Defaults to `None` (no limit: give ``max_trials``).
        population_size: expressions per generation. Defaults to `25` (EvoMAL's).
        crossover_rate, mutation_rate, elitism_rate, tournament_size, max_height,
        init_heights: the genetic operators' settings
            (:func:`~metaloss.search.evomal.next_generation`). Default to EvoMAL's.
        prefilter: ``prefilter({"expression": e}) -> bool``, whether to train a candidate
            (the rejection protocol). Defaults to `None` (train every one).
        equivalence: finds equivalent expressions (see the module docstring). Defaults to
            `None` (no reuse).
        seed: seeds the genetic operators (0 is an ordinary seed). Defaults to `None` (random,
            drawn once and saved).
        trial_timeout, max_retries_per_trial, max_consecutive_failed_trials: as for
            :class:`~metaloss.search.CMAESOracle`.
    """

    STATE_KEY = "evomal"

    def __init__(
        self,
        objective=None,
        max_trials: int | None = None,
        hyperparameters: keras_tuner.HyperParameters | None = None,
        *,
        generations: int | None = None,
        population_size: int = DEFAULT_POPULATION_SIZE,
        crossover_rate: float = DEFAULT_CROSSOVER_RATE,
        mutation_rate: float = DEFAULT_MUTATION_RATE,
        elitism_rate: float = DEFAULT_ELITISM_RATE,
        tournament_size: int = DEFAULT_TOURNAMENT_SIZE,
        max_height: int = DEFAULT_MAX_HEIGHT,
        init_heights: tuple[int, int] = DEFAULT_INIT_HEIGHTS,
        prefilter: Callable[[dict], bool] | None = None,
        equivalence=None,
        seed: int | None = None,
        allow_new_entries: bool = True,
        tune_new_entries: bool = True,
        max_retries_per_trial: int = 0,
        max_consecutive_failed_trials: int | None = 3,
        trial_timeout: float | None = None,
    ) -> None:
        for name, value, minimum in (
            ("population_size", population_size, 2),
            ("tournament_size", tournament_size, 1),
            ("max_height", max_height, 1),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise invalid_value(name, f"an integer >= {minimum}", value)
        if prefilter is not None and not callable(prefilter):
            raise invalid_value("prefilter", "a callable values -> bool, or None", prefilter)
        if equivalence is not None and not (
            callable(getattr(equivalence, "match", None))
            and callable(getattr(equivalence, "add", None))
        ):
            raise invalid_value(
                "equivalence", "an object with match(expression) and add(expression)", equivalence
            )
        for name, rate in (
            ("crossover_rate", crossover_rate),
            ("mutation_rate", mutation_rate),
            ("elitism_rate", elitism_rate),
        ):
            if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
                raise invalid_value(name, "a number in [0, 1]", rate)
        if crossover_rate + mutation_rate > 1:
            raise invalid_value(
                "mutation_rate",
                f"at most 1 - crossover_rate = {1 - crossover_rate:g}",
                mutation_rate,
            )
        self._started = False
        self._scored: list[tuple[str, float]] = []
        self._scores: dict[str, float] = {}
        super().__init__(
            objective=objective,
            max_trials=max_trials,
            hyperparameters=hyperparameters,
            generations=generations,
            seed=seed,
            allow_new_entries=allow_new_entries,
            tune_new_entries=tune_new_entries,
            max_retries_per_trial=max_retries_per_trial,
            max_consecutive_failed_trials=max_consecutive_failed_trials,
            trial_timeout=trial_timeout,
        )
        self.population_size = population_size
        self.operators = {
            "crossover_rate": float(crossover_rate),
            "mutation_rate": float(mutation_rate),
            "elitism_rate": float(elitism_rate),
            "tournament_size": tournament_size,
            "max_height": max_height,
        }
        self.init_heights = tuple(init_heights)
        self.prefilter = prefilter
        self.equivalence = equivalence
        self._archived: set[str] = set()  # expressions the equivalence archive holds

    def _reset_search_state(self) -> None:
        super()._reset_search_state()
        self._started = False
        self._scored = []
        self._scores = {}
        self._archived = set()

    # The strategy -----------------------------------------------------------------------

    def _strategy_started(self) -> bool:
        return self._started

    def _start_strategy(self) -> None:
        self._started = True

    def _random(self) -> random.Random:
        return random.Random(derived_seed(self.search_seed, 1, self._generation))

    def _propose(self) -> list:
        if self._generation == 0 or not self._scored:
            return initial_population(
                self.population_size, self._random(), heights=self.init_heights
            )
        return next_generation(
            self._scored, self._random(), size=self.population_size, **self.operators
        )

    def _values(self, index: int) -> dict:
        return {EXPRESSION: self._candidates[index]}

    def _tell(self, fitness: list[float]) -> None:
        # Higher scores are better for the genetic operators; failed ones rank last.
        self._scored = [
            (expression, -f if math.isfinite(f) else -math.inf)
            for expression, f in zip(self._candidates, fitness, strict=True)
        ]

    # Screens ----------------------------------------------------------------------------

    def _screen(self, values: dict) -> tuple[bool, float | None]:
        if self.prefilter is None:
            return True, None
        return bool(self.prefilter(values)), None

    def _sync_archive(self) -> None:
        """Archives every scored expression not archived yet, in the order they were scored
        (after a resume, the archive is rebuilt from the saved scores)."""
        for expression in self._scores:
            if expression not in self._archived:
                self.equivalence.add(expression)
                self._archived.add(expression)

    def _reused_fitness(self, values: dict) -> float | None:
        expression = values[EXPRESSION]
        if expression in self._scores:  # an elite, or a child equal to a scored expression
            return self._scores[expression]
        if self.equivalence is None:
            return None
        self._sync_archive()
        match = self.equivalence.match(expression)
        return None if match is None else self._scores[match]

    def _trial_scored(self, trial) -> None:
        expression = trial.hyperparameters.values[EXPRESSION]
        self._scores.setdefault(expression, self._fitness_of(trial))

    def candidates_per_generation(self) -> int:
        return self.population_size

    # State ------------------------------------------------------------------------------

    def _strategy_state(self) -> dict:
        return {
            "started": self._started,
            "scored": [[e, s if math.isfinite(s) else None] for e, s in self._scored],
            "scores": {e: (f if math.isfinite(f) else "inf") for e, f in self._scores.items()},
            "operators": self.operators,
            "population_size": self.population_size,
        }

    def _set_strategy_state(self, saved: dict) -> None:
        self._started = bool(saved["started"])
        self._scored = [(e, -math.inf if s is None else float(s)) for e, s in saved["scored"]]
        self._scores = {
            e: FAILED_FITNESS if f == "inf" else float(f) for e, f in saved["scores"].items()
        }
        self.operators = dict(saved["operators"])
        self.population_size = int(saved["population_size"])
        self._archived = set()  # the archive object is rebuilt from the scores when needed
