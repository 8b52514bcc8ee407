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
import os
import pickle
import shutil
from collections.abc import Callable, Mapping, Sequence

import keras_tuner
import numpy as np
from keras_tuner.engine import trial as trial_module

from metaloss.losses._base import invalid_value
from metaloss.search._files import write_json_atomically
from metaloss.search._pycma import (
    GlobalNumpySeed,
    derived_seed,
    global_randn,
    initial_mean,
    searched_floats,
    start_strategy,
)
from metaloss.search._trial_timeout import TrialClock, abandon_silent_trials

__all__ = [
    "DEFAULT_REJECTED",
    "DEFAULT_SIGMA0",
    "FAILED_FITNESS",
    "FAR_BOUND_STEPS",
    "HEARTBEAT_METRIC",
    "REJECTED_RULES",
    "CMAESOracle",
]

#: The metric a tuner reports every epoch to say a trial is alive (not a result).
HEARTBEAT_METRIC = "metaloss_heartbeat"

DEFAULT_SIGMA0 = 1.2
#: The fitness (minimised) of failed and invalid candidates, and of rejected ones under "worst".
FAILED_FITNESS = math.inf
#: What CMA-ES is told of rejected candidates: "worst" (the reference's rule: all tie at
#: :data:`FAILED_FITNESS`) or "ranked" (ordered by their violation, see ``CMAESOracle``).
REJECTED_RULES = ("worst", "ranked")
DEFAULT_REJECTED = "worst"
#: A parameter whose range reaches at least this many initial step sizes either side of the
#: initial mean is searched without pycma bounds (they would never bite, and near a bound pycma's
#: transformation biases the samples and the mean: pycma issue #229).
FAR_BOUND_STEPS = 100.0
# A guard against a prefilter that rejects every candidate of every generation.
_MAX_REJECTED_GENERATIONS = 1000

_Status = trial_module.TrialStatus
# Strategies pickled before _pycma existed name their sampler metaloss.search.oracle._global_randn.
_global_randn = global_randn


class CMAESOracle(keras_tuner.Oracle):
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
        for name, value, minimum in (
            ("max_trials", max_trials, 1),
            ("generations", generations, 1),
            ("population_size", population_size, 2),
        ):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < minimum
            ):
                raise invalid_value(name, f"an integer >= {minimum} or None", value)
        sigmas = np.atleast_1d(np.asarray(sigma0, dtype=np.float64))
        if sigmas.ndim != 1 or not np.all(np.isfinite(sigmas)) or np.any(sigmas <= 0):
            raise invalid_value("sigma0", "a positive number or a sequence of them", sigma0)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise invalid_value("seed", "a non-negative integer or None", seed)
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
        search_seed = seed if seed is not None else int(np.random.SeedSequence().entropy % 2**31)
        # KerasTuner (like pycma) treats a seed of 0 as "random": hand it a derived one.
        super().__init__(
            objective=objective,
            max_trials=max_trials,
            hyperparameters=hyperparameters,
            allow_new_entries=allow_new_entries,
            tune_new_entries=tune_new_entries,
            seed=search_seed + 1,
            max_retries_per_trial=max_retries_per_trial,
            max_consecutive_failed_trials=max_consecutive_failed_trials,
        )
        self.generations = generations
        self.population_size = population_size
        self.sigma0 = sigma0
        self.sigma_scale = sigma_scale
        self.mean = mean
        self.prefilter = prefilter
        #: The rule for rejected candidates' fitness (``"worst"`` or ``"ranked"``).
        self.rejected = rejected
        self.search_seed = search_seed
        self._clock = TrialClock(trial_timeout)
        self.trial_timeout = self._clock.timeout
        self._reset_search_state()
        self._deferred_save = False

    def _reset_search_state(self) -> None:
        self._es = None
        self._names: list[str] = []
        self._generation = 0  # generations told to CMA-ES
        self._candidates: list[list[float]] | None = None
        self._assigned: list[str | None] = []  # trial id, "rejected", or None (not yet served)
        self._fitness: list[float | None] = []
        self._violations: list[float | None] = []  # of rejected candidates, when known
        self._history: list[dict] = []
        self._crashed: set[str] = set()
        self._rejected_generations_in_a_row = 0
        self._clock.set_state(None)
        #: Why the search ended (`None` while it goes on).
        self.stop_reason: str | None = None

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

    def _ask(self) -> None:
        with GlobalNumpySeed(derived_seed(self.search_seed, 1, self._generation)):
            candidates = self._es.ask()
        self._candidates = [[float(v) for v in x] for x in candidates]
        self._assigned = [None] * len(self._candidates)
        self._fitness = [None] * len(self._candidates)
        self._violations = [None] * len(self._candidates)

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
            if who != "rejected" and math.isfinite(f)
        ]
        ceiling = max(1.0, max(trained) + 1.0) if trained else 1.0
        return [
            ceiling + v if who == "rejected" and v is not None else f
            for f, v, who in zip(self._fitness, self._violations, self._assigned, strict=True)
        ]

    def _maybe_tell(self) -> None:
        """Tells CMA-ES the generation once every candidate has a fitness."""
        if self._candidates is None or any(f is None for f in self._fitness):
            return
        with GlobalNumpySeed(derived_seed(self.search_seed, 1, self._generation)):
            self._es.tell([np.asarray(x) for x in self._candidates], self._told_fitness())
        trained = [
            f for f, who in zip(self._fitness, self._assigned, strict=True) if who != "rejected"
        ]
        finite = [f for f in trained if math.isfinite(f)]
        rejected = self._assigned.count("rejected")
        abandoned = self._clock.in_generation(self._generation)
        self._history.append(
            {
                "generation": self._generation,
                "names": list(self._names),
                "candidates": self._candidates,
                # Trained candidates' fitness; None for rejected, failed and diverged ones.
                "fitness": [
                    f if who != "rejected" and math.isfinite(f) else None
                    for f, who in zip(self._fitness, self._assigned, strict=True)
                ],
                "trial_ids": self._assigned,
                "violations": self._violations,
                "rejected": rejected,
                "failed": len(trained) - len(finite),
                "abandoned": len(abandoned),
                "abandoned_trial_ids": abandoned,
                "best_fitness": min(finite) if finite else None,
                "median_fitness": float(np.median(finite)) if finite else None,
                "sigma": float(self._es.sigma),
            }
        )
        all_rejected = rejected == len(self._candidates)
        self._rejected_generations_in_a_row = (
            self._rejected_generations_in_a_row + 1 if all_rejected else 0
        )
        self._generation += 1
        self._candidates = None

    def _finished(self) -> bool:
        """Whether the search is over; sets :attr:`stop_reason` when it is."""
        if self.generations is not None and self._generation >= self.generations:
            self.stop_reason = f"ran {self._generation} generations"
        elif self._rejected_generations_in_a_row >= _MAX_REJECTED_GENERATIONS:
            self.stop_reason = f"{_MAX_REJECTED_GENERATIONS} generations in a row were rejected"
        elif self._es.stop():
            criteria = ", ".join(sorted(self._es.stop()))
            self.stop_reason = f"CMA-ES stopped after {self._generation} generations ({criteria})"
        return self.stop_reason is not None

    def populate_space(self, trial_id: str) -> dict:
        """Serves the next candidate of the generation in flight, or IDLE, or STOPPED."""
        if self._es is None:
            self._start_strategy()
        while True:
            if self._candidates is None:
                if self._finished():
                    return {"status": _Status.STOPPED, "values": None}
                self._ask()
            if None not in self._assigned:
                return {"status": _Status.IDLE, "values": None}
            index = self._assigned.index(None)
            values = self._values(index)
            keep, violation = self._screen(values)
            if not keep:
                self._assigned[index] = "rejected"
                self._fitness[index] = FAILED_FITNESS  # told as "rejected" says: _told_fitness
                self._violations[index] = violation
                self._maybe_tell()
                continue
            self._assigned[index] = trial_id
            return {"status": _Status.RUNNING, "values": values}

    @keras_tuner.synchronized
    def create_trial(self, tuner_id: str):
        """As KerasTuner's, after abandoning silent trials (see ``trial_timeout``); a tuner id
        whose trial is still on gets it back, as in KerasTuner. Saves every answer (KerasTuner
        saves only new RUNNING ones): rejected candidates, told generations, the clock."""
        self._clock.asked(tuner_id)
        for trial_id in abandon_silent_trials(self, self._clock, self._generation):
            if self._candidates is not None and trial_id in self._assigned:
                self._assigned[self._assigned.index(trial_id)] = None  # served again next
        trial = super().create_trial(tuner_id)
        if trial.status == _Status.RUNNING:
            self._clock.reported(trial.trial_id)
        self.save()
        return trial

    @keras_tuner.synchronized
    def update_trial(self, trial_id: str, metrics: dict, step: int = 0):
        """As KerasTuner's, and a report for ``trial_timeout``. An abandoned trial's metrics
        are ignored: the answer is a trial with status ``STOPPED``. Metrics that are only
        :data:`HEARTBEAT_METRIC` (a tuner's sign of life at the end of every epoch) are
        recorded nowhere else."""
        if self._clock.is_abandoned(trial_id):
            stored = self.trials[trial_id]
            return trial_module.Trial(stored.hyperparameters, trial_id, _Status.STOPPED)
        if set(metrics) == {HEARTBEAT_METRIC}:
            self._clock.reported(trial_id)
            return self.trials[trial_id]
        trial = super().update_trial(trial_id, metrics, step=step)
        self._clock.reported(trial_id)
        return trial

    def _fitness_of(self, trial) -> float:
        if trial.status != _Status.COMPLETED or trial.score is None:
            return FAILED_FITNESS
        score = float(trial.score)
        if not math.isfinite(score):
            return FAILED_FITNESS
        return -score if self.objective.direction == "max" else score

    def _record(self, trial) -> None:
        if self._candidates is None or trial.trial_id not in self._assigned:
            return
        self._fitness[self._assigned.index(trial.trial_id)] = self._fitness_of(trial)
        self._maybe_tell()

    @keras_tuner.synchronized
    def end_trial(self, trial) -> None:
        """Ends a trial as KerasTuner does, then gives CMA-ES its fitness (worst if it failed).

        The late end of an abandoned trial is ignored (its candidate was served again)."""
        if self._clock.is_abandoned(trial.trial_id):
            return
        # A tuner fails a trial on purpose (FailedTrialError, e.g. a diverged candidate) with
        # FAILED; INVALID means run_trial crashed. Only crashes count towards stopping.
        if trial.status == _Status.INVALID:
            self._crashed.add(trial.trial_id)
        self._deferred_save = True
        try:
            super().end_trial(trial)
        finally:
            self._deferred_save = False
        self._clock.ended(trial.trial_id)
        if trial.trial_id not in self._retry_queue:
            self._record(self.trials[trial.trial_id])
        self.save()

    def _check_consecutive_failures(self) -> None:
        in_a_row = 0
        for trial_id in self.end_order:
            crashed = self.trials[trial_id].status == _Status.FAILED and trial_id in self._crashed
            in_a_row = in_a_row + 1 if crashed else 0
            if in_a_row == self.max_consecutive_failed_trials:
                raise RuntimeError(
                    f"{in_a_row} trials in a row crashed; the last one said:\n"
                    + (self.trials[trial_id].message or "")
                )

    # Reporting ------------------------------------------------------------------------------

    @property
    def generation(self) -> int:
        """Generations told to CMA-ES so far."""
        return self._generation

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

    @property
    def history(self) -> list[dict]:
        """One record per finished generation: candidates, fitness, trial ids, counts."""
        return list(self._history)

    def summary(self) -> dict:
        """Where the search stands: generation, trials done/running, rejected, abandoned
        (not counted as done or failed), best score."""
        in_flight = self._assigned if self._candidates is not None else []
        ended = [
            t
            for t in self.trials.values()
            if t.status != _Status.RUNNING and not self._clock.is_abandoned(t.trial_id)
        ]
        best = self.get_best_trials(1)
        best_score = best[0].score if best and best[0].status == _Status.COMPLETED else None
        generation = self._generation + (self._candidates is not None)
        if self.generations is not None:
            generation = min(generation, self.generations)
        return {
            "generation": max(generation, 1),
            "generations": self.generations,
            "trials_done": len(ended),
            "trials_running": len(self.ongoing_trials),
            "failed": sum(t.status == _Status.FAILED for t in ended),
            "rejected": sum(g["rejected"] for g in self._history) + in_flight.count("rejected"),
            "abandoned": len(self._clock.abandoned),
            "best_score": None if best_score is None else float(best_score),
            "stop_reason": self.stop_reason,
        }

    # State ----------------------------------------------------------------------------------

    def get_state(self) -> dict:
        state = super().get_state()
        state["cmaes"] = {
            "search_seed": self.search_seed,
            "strategy": (
                base64.b64encode(pickle.dumps(self._es)).decode("ascii")
                if self._es is not None
                else None
            ),
            "names": self._names,
            "generation": self._generation,
            "candidates": self._candidates,
            "assigned": self._assigned,
            "fitness": [
                None if f is None else (f if math.isfinite(f) else "inf") for f in self._fitness
            ],
            "violations": self._violations,
            "rejected": self.rejected,
            "history": self._history,
            "crashed": sorted(self._crashed),
            "rejected_generations_in_a_row": self._rejected_generations_in_a_row,
            "stop_reason": self.stop_reason,
            "trial_clock": self._clock.get_state(),
        }
        return state

    def set_state(self, state: dict) -> None:
        super().set_state(state)
        saved = state["cmaes"]
        self.search_seed = saved["search_seed"]
        strategy = saved["strategy"]
        self._es = pickle.loads(base64.b64decode(strategy)) if strategy is not None else None
        self._names = list(saved["names"])
        self._generation = saved["generation"]
        self._candidates = saved["candidates"]
        self._assigned = list(saved["assigned"])
        self._fitness = [
            None if f is None else (FAILED_FITNESS if f == "inf" else float(f))
            for f in saved["fitness"]
        ]
        # A state saved before violations were kept: rejected candidates were told the worst.
        self._violations = list(saved.get("violations") or [None] * len(self._assigned))
        self.rejected = saved.get("rejected", "worst")
        self._history = list(saved["history"])
        self._crashed = set(saved["crashed"])
        self._rejected_generations_in_a_row = saved["rejected_generations_in_a_row"]
        self.stop_reason = saved["stop_reason"]
        self._clock.set_state(saved.get("trial_clock"))

    def save(self) -> None:
        if self._deferred_save:
            return
        write_json_atomically(self._get_oracle_fname(), self.get_state())

    def _save_trial(self, trial) -> None:
        write_json_atomically(
            os.path.join(self._get_trial_dir(trial.trial_id), "trial.json"), trial.get_state()
        )

    def reload(self) -> None:
        """Reloads as KerasTuner does, and repairs what a kill between two writes left behind.

        A trial file the oracle state never recorded (killed between writing the trial and the
        oracle) is removed; a trial that had ended but whose end the oracle state missed is
        recorded instead of being trained again.
        """
        super().reload()
        known = set(self.start_order)
        for trial_id in [t for t in self.trials if t not in known]:
            del self.trials[trial_id]
            shutil.rmtree(os.path.join(self._project_dir, f"trial_{trial_id}"), True)
        for trial_id in list(self._retry_queue):
            trial = self.trials[trial_id]
            if trial.status in (_Status.COMPLETED, _Status.FAILED) and trial_id not in set(
                self.end_order
            ):
                self._retry_queue.remove(trial_id)
                self._run_times[trial_id] += 1
                self.end_order.append(trial_id)
                self._record(trial)
        self.save()
