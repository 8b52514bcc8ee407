"""A KerasTuner oracle driven by CMA-ES (pycma), for TaylorGLO and other parameterised losses.

The oracle asks CMA-ES for a generation of candidates, serves them to trials (to one tuner or
to many running in parallel), answers ``IDLE`` while a generation waits for its last trials,
and tells CMA-ES the generation's fitness once every trial of it has ended, in whatever order
they end. Candidates that a ``prefilter`` rejects (TaylorGLO's invariant) are not trained: they
get the worst fitness (``rejected="worst"``, the reference's rule) or fitness values worse than
every trained candidate's but ranked by how far they break the prefilter's condition
(``rejected="ranked"``), so that CMA-ES learns which way lies the feasible side. Everything that
evolves, the pickled CMA-ES included, lives in ``get_state()``, so a search killed at any moment
resumes where it stopped. With a ``trial_timeout``, a trial whose worker went silent (killed
mid-trial) is abandoned and its candidate served again, instead of the generation waiting for it
for ever.

References:
    Hansen, *The CMA Evolution Strategy: A Tutorial*, arXiv:1604.00772.
    Gonzalez & Miikkulainen, *Optimizing Loss Functions Through Multivariate Taylor Polynomial
    Parameterization*, arXiv:2002.00059.
    keras-team/keras-tuner issue #915 (a dead worker's trial stalls the chief).
    CMA-ES/pycma issue #229 (bounds bias the samples and the mean).
"""

from __future__ import annotations

import base64
import math
import pickle
from collections.abc import Callable, Mapping, Sequence

import keras_tuner
import numpy as np

from metaloss.losses._base import invalid_value
from metaloss.search._pycma import (
    GlobalNumpySeed,
    derived_seed,
    global_randn,
    initial_mean,
    searched_floats,
    start_strategy,
)
from metaloss.search.generational import (
    FAILED_FITNESS,
    HEARTBEAT_METRIC,
    REJECTED,
    GenerationalOracle,
)

__all__ = [
    "DEFAULT_REJECTED",
    "DEFAULT_SIGMA0",
    "FAILED_FITNESS",
    "FAR_BOUND_STEPS",
    "HEARTBEAT_METRIC",
    "REJECTED_RULES",
    "CMAESOracle",
]

DEFAULT_SIGMA0 = 1.2
#: What CMA-ES is told of rejected candidates: "worst" (the reference's rule: all tie at
#: :data:`FAILED_FITNESS`) or "ranked" (ordered by their violation, see ``CMAESOracle``).
REJECTED_RULES = ("worst", "ranked")
DEFAULT_REJECTED = "worst"
#: A parameter whose range reaches at least this many initial step sizes either side of the
#: initial mean is searched without pycma bounds (they would never bite, and near a bound pycma's
#: transformation biases the samples and the mean: pycma issue #229).
FAR_BOUND_STEPS = 100.0
# Strategies pickled before _pycma existed name their sampler metaloss.search.oracle._global_randn.
_global_randn = global_randn


class CMAESOracle(GenerationalOracle):
    """CMA-ES over every ``hp.Float`` of the search space, one generation at a time.

    Args:
        objective: what ``run_trial`` reports, as in KerasTuner. Defaults to `None` (minimise
            the single value ``run_trial`` returns).
        max_trials: trained trials at most (rejected candidates are not trials). Defaults to
            `None` (no limit; then give ``generations``).
        hyperparameters: a ``keras_tuner.HyperParameters`` declaring the search space, usually
            left to the tuner's hypermodel. Every entry must be an ``hp.Float`` (or ``hp.Fixed``,
            passed through unchanged). Defaults to `None`.
        generations: CMA-ES generations at most. Defaults to `None` (no limit).
        population_size: candidates per generation. Defaults to `None` (pycma's
            ``4 + ⌊3 ln N⌋`` for ``N`` parameters).
        sigma0: initial step size; a sequence gives one per parameter. Parameter i starts
            with the step ``σ_i = sigma0_i · sigma_scale_i``. Defaults to `1.2` (the TaylorGLO
            reference's, in its units: see :data:`~metaloss.search.spaces.REFERENCE_SCALE`).
        sigma_scale: per-parameter multipliers of ``sigma0``, a sequence or a ``{name: scale}``
            mapping (:class:`~metaloss.search.TaylorGLOSpace`'s ``sigma_scale``), given to
            pycma as ``CMA_stds``. Defaults to `None` (all 1: ``sigma0`` in the parameters'
            own units).
        mean: initial mean, a sequence or a ``{name: value}`` mapping. Defaults to `None`
            (zero, or the middle of a range that excludes zero).
        prefilter: ``prefilter(values) -> bool`` decides from a candidate's ``{name: value}``
            whether it is worth training; rejected candidates get a fitness without a trial.
            A prefilter with a method ``violation(values) -> float`` (e.g.
            :class:`~metaloss.search.TaylorGLOInvariant`) is asked that instead: ``<= 0`` keeps
            the candidate, a positive value rejects it and says by how much. Defaults to
            `None` (train every candidate).
        rejected: the fitness of rejected candidates. ``"worst"`` (the reference's rule): all
            get :data:`FAILED_FITNESS` and tie. ``"ranked"``: a rejected candidate with a
            violation ``v > 0`` gets ``c + v``, with ``c = max(1, f_max + 1)`` and ``f_max`` the
            highest finite fitness trained in its generation (``c = 1`` for ``val_accuracy``,
            whose fitness ``-accuracy`` lies in [-1, 0]): worse than every trained candidate,
            ordered by violation, so CMA-ES moves towards the feasible side. Either way, trained
            candidates that failed or diverged (and rejected ones without a violation, from a
            bool prefilter or outside the ranges) get :data:`FAILED_FITNESS`: under "ranked"
            the order is trained < rejected (by violation) < failed. A resumed search keeps
            the rule it was saved with (``"worst"`` for a search saved before this option).
            Defaults to :data:`DEFAULT_REJECTED` (``"worst"``).
        seed: seeds CMA-ES; the same seed gives the same candidates, and ``0`` is a seed like
            any other. Defaults to `None` (a random seed, drawn once and then saved).
        max_retries_per_trial: as in KerasTuner. Defaults to `0`.
        max_consecutive_failed_trials: crashed trials in a row that stop the search. Trials
            that fail on purpose (``FailedTrialError``, e.g. a diverged candidate) do not count.
            Defaults to `3`.
        trial_timeout: seconds a running trial may go without a report (its creation, its
            tuner id asking for it again, ``update_trial``) before it is abandoned, checked
            whenever a tuner asks for a trial: it becomes ``FAILED`` with a message starting
            ``"abandoned"``, its candidate goes, under a new trial id, to the next tuner that
            asks, and its late ``update_trial`` (answered ``STOPPED``) or ``end_trial`` is
            ignored. A :class:`~metaloss.search.TaylorGLOSearch` worker reports after every
            epoch, so make it longer than the longest epoch. Defaults to `None` (wait for ever,
            as KerasTuner does: keras-team/keras-tuner issue #915).

    The ``hp.Float`` ranges are hard limits. A parameter whose range reaches within
    :data:`FAR_BOUND_STEPS` (100) initial steps ``σ_i`` of the initial mean is kept inside it
    by pycma's bounds (``BoundTransform``); one whose range is wider is searched unbounded,
    as the TaylorGLO reference searches, since near a bound pycma's transformation biases the
    samples and pulls the mean (pycma issue #229). A candidate that nonetheless leaves such a
    range is rejected (fitness :data:`FAILED_FITNESS`, not trained).

    Example:

    ```python
    hp = keras_tuner.HyperParameters()
    hp.Float("period", 1.0, 40.0)
    hp.Float("amplitude", 0.0, 1.0)
    oracle = CMAESOracle("val_accuracy", hyperparameters=hp, generations=5,
                         sigma0=[8.0, 0.3], mean=[10.0, 0.5], seed=1)
    ```
    """

    def __init__(
        self,
        objective=None,
        max_trials: int | None = None,
        hyperparameters: keras_tuner.HyperParameters | None = None,
        *,
        generations: int | None = None,
        population_size: int | None = None,
        sigma0: float | Sequence[float] = DEFAULT_SIGMA0,
        sigma_scale: Sequence[float] | Mapping[str, float] | None = None,
        mean: Sequence[float] | Mapping[str, float] | None = None,
        prefilter: Callable[[dict], bool] | None = None,
        rejected: str = DEFAULT_REJECTED,
        seed: int | None = None,
        allow_new_entries: bool = True,
        tune_new_entries: bool = True,
        max_retries_per_trial: int = 0,
        max_consecutive_failed_trials: int | None = 3,
        trial_timeout: float | None = None,
    ) -> None:
        if population_size is not None and (
            isinstance(population_size, bool)
            or not isinstance(population_size, int)
            or population_size < 2
        ):
            raise invalid_value("population_size", "an integer >= 2 or None", population_size)
        sigmas = np.atleast_1d(np.asarray(sigma0, dtype=np.float64))
        if sigmas.ndim != 1 or not np.all(np.isfinite(sigmas)) or np.any(sigmas <= 0):
            raise invalid_value("sigma0", "a positive number or a sequence of them", sigma0)
        if sigma_scale is not None:
            entries = sigma_scale.values() if isinstance(sigma_scale, Mapping) else sigma_scale
            try:
                scales = [float(v) for v in entries]
            except (TypeError, ValueError):
                scales = []
            if not scales or not all(0 < v < math.inf for v in scales):
                raise invalid_value(
                    "sigma_scale",
                    "positive finite numbers, a sequence or a {name: scale} mapping, or None",
                    sigma_scale,
                )
        if prefilter is not None and not callable(prefilter):
            raise invalid_value("prefilter", "a callable values -> bool, or None", prefilter)
        if rejected not in REJECTED_RULES:
            raise invalid_value(
                "rejected", f"one of {', '.join(map(repr, REJECTED_RULES))}", rejected
            )
        self._es = None
        self._names: list[str] = []
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
        self.sigma0 = sigma0
        self.sigma_scale = sigma_scale
        self.mean = mean
        self.prefilter = prefilter
        #: The rule for rejected candidates' fitness (``"worst"`` or ``"ranked"``).
        self.rejected = rejected

    def _reset_search_state(self) -> None:
        super()._reset_search_state()
        self._es = None
        self._names = []

    def _strategy_started(self) -> bool:
        return self._es is not None

    def _start_strategy(self) -> None:
        searched = searched_floats(self.hyperparameters)
        self._names = [hp.name for hp in searched]
        self._es = start_strategy(
            searched,
            initial_mean(searched, self.mean),
            self.sigma0,
            self.sigma_scale,
            seed=derived_seed(self.search_seed, 0, 1),
            population_size=self.population_size,
            far_bound_steps=FAR_BOUND_STEPS,
        )

    # Generations ----------------------------------------------------------------------------

    def _propose(self) -> list:
        with GlobalNumpySeed(derived_seed(self.search_seed, 1, self._generation)):
            candidates = self._es.ask()
        return [[float(v) for v in x] for x in candidates]

    def _values(self, index: int) -> dict:
        values = dict(zip(self._names, self._candidates[index], strict=True))
        for hp in self.hyperparameters.space:
            if hp.name not in values:  # hp.Fixed
                values[hp.name] = hp.value
        return values

    def _screen(self, values: dict) -> tuple[bool, float | None]:
        """``(keep, violation)``: whether to train a candidate and, if rejected, by how much it
        breaks the prefilter's condition (`None` when unknown)."""
        for hp in self.hyperparameters.space:
            if hp.name in self._names and not hp.min_value <= values[hp.name] <= hp.max_value:
                return False, None  # outside an unbounded range (see the class docstring)
        if self.prefilter is None:
            return True, None
        measure = getattr(self.prefilter, "violation", None)
        if not callable(measure):
            return bool(self.prefilter(values)), None
        violation = float(measure(values))
        if violation <= 0.0:
            return True, None
        return False, violation if math.isfinite(violation) else None

    def _told_fitness(self) -> list[float]:
        """The generation's fitness as CMA-ES is told it (see ``rejected``)."""
        if self.rejected != "ranked":
            return list(self._fitness)
        trained = [
            f
            for f, who in zip(self._fitness, self._assigned, strict=True)
            if who != REJECTED and math.isfinite(f)
        ]
        ceiling = max(1.0, max(trained) + 1.0) if trained else 1.0
        return [
            ceiling + v if who == REJECTED and v is not None else f
            for f, v, who in zip(self._fitness, self._violations, self._assigned, strict=True)
        ]

    def _tell(self, fitness: list[float]) -> None:
        with GlobalNumpySeed(derived_seed(self.search_seed, 1, self._generation)):
            self._es.tell([np.asarray(x) for x in self._candidates], fitness)

    def _history_extra(self) -> dict:
        return {"names": list(self._names), "sigma": float(self._es.sigma)}

    def _strategy_stop_reason(self) -> str | None:
        if self._es.stop():
            criteria = ", ".join(sorted(self._es.stop()))
            return f"CMA-ES stopped after {self._generation} generations ({criteria})"
        return None

    # Reporting ----------------------------------------------------------------------------

    def candidates_per_generation(self) -> int:
        """The population size: as given, else pycma's ``4 + ⌊3 ln N⌋`` for N parameters."""
        if self.population_size is not None:
            return self.population_size
        searched = [
            hp
            for hp in self.hyperparameters.space
            if isinstance(hp, keras_tuner.engine.hyperparameters.Float)
        ]
        return 4 + int(3 * math.log(max(len(searched), 1)))

    # State ----------------------------------------------------------------------------------

    STATE_KEY = "cmaes"

    def _strategy_state(self) -> dict:
        return {
            "strategy": (
                base64.b64encode(pickle.dumps(self._es)).decode("ascii")
                if self._es is not None
                else None
            ),
            "names": self._names,
            "rejected": self.rejected,
        }

    def _set_strategy_state(self, saved: dict) -> None:
        strategy = saved["strategy"]
        self._es = pickle.loads(base64.b64decode(strategy)) if strategy is not None else None
        self._names = list(saved["names"])
        self.rejected = saved.get("rejected", "worst")
