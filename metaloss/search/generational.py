"""A KerasTuner oracle that proposes candidates one generation at a time: the shared core.

An evolutionary search (CMA-ES for TaylorGLO, genetic programming for EvoMAL) asks its strategy
for a generation of candidates, serves them to trials (to one tuner or to many running in
parallel), answers ``IDLE`` while a generation waits for its last trials, and tells the strategy
the generation's fitness once every trial of it has ended, in whatever order they end.

Before a candidate is served it is screened: a candidate that :meth:`_screen` rejects is not
trained and gets the worst fitness (or, for CMA-ES under ``rejected="ranked"``, a fitness
ordered by how far it breaks the prefilter's condition); a candidate for which
:meth:`_reused_fitness` knows a fitness (EvoMAL's gradient equivalence) gets that one, also
without a trial. Everything that evolves lives in ``get_state()``, so a search killed at any
moment resumes where it stopped. With a ``trial_timeout``, a trial whose worker went silent
(killed mid-trial) is abandoned and its candidate served again, instead of the generation waiting
for it for ever.

Fitness is minimised here: a ``val_accuracy`` objective (maximised) is told as ``-accuracy``.

References:
    keras-team/keras-tuner issue #915 (a dead worker's trial stalls the chief).
"""

from __future__ import annotations

import math
import os
import shutil

import keras_tuner
import numpy as np
from keras_tuner.engine import trial as trial_module

from metaloss.losses._base import invalid_value
from metaloss.search._files import write_json_atomically
from metaloss.search._trial_timeout import TrialClock, abandon_silent_trials

__all__ = ["FAILED_FITNESS", "HEARTBEAT_METRIC", "REUSED", "GenerationalOracle"]

#: The metric a tuner reports every epoch to say a trial is alive (not a result).
HEARTBEAT_METRIC = "metaloss_heartbeat"
#: The fitness (minimised) of failed and invalid candidates, and of rejected ones.
FAILED_FITNESS = math.inf
#: The ``assigned`` entry of a candidate that reused an equivalent candidate's fitness.
REUSED = "reused"
REJECTED = "rejected"
# A guard against a prefilter that rejects every candidate of every generation.
_MAX_REJECTED_GENERATIONS = 1000

_Status = trial_module.TrialStatus


class GenerationalOracle(keras_tuner.Oracle):
    """The generation bookkeeping shared by the evolutionary oracles; subclasses add a strategy.

    A subclass implements :meth:`_start_strategy`, :meth:`_propose`, :meth:`_values`,
    :meth:`_tell` and the strategy's state (:meth:`_strategy_state`,
    :meth:`_set_strategy_state`); it may override :meth:`_screen`, :meth:`_reused_fitness`,
    :meth:`_told_fitness`, :meth:`_strategy_stop_reason` and :meth:`_history_extra`.
    ``STATE_KEY`` names its section of the saved oracle state.

    Args:
        objective, max_trials, hyperparameters, allow_new_entries, tune_new_entries,
        max_retries_per_trial: as in KerasTuner.
        generations: generations at most. Defaults to `None` (no limit).
        seed: the search's seed (saved; ``0`` is a seed like any other). Defaults to `None`
            (random, drawn once).
        max_consecutive_failed_trials: crashed trials in a row that stop the search; trials
            that fail on purpose (``FailedTrialError``, e.g. a diverged candidate) do not count.
            Defaults to `3`.
        trial_timeout: seconds a running trial may go without a report before it is abandoned
            and its candidate served again. Defaults to `None` (wait for ever).
    """

    STATE_KEY = "generations"

    def __init__(
        self,
        objective=None,
        max_trials: int | None = None,
        hyperparameters: keras_tuner.HyperParameters | None = None,
        *,
        generations: int | None = None,
        seed: int | None = None,
        allow_new_entries: bool = True,
        tune_new_entries: bool = True,
        max_retries_per_trial: int = 0,
        max_consecutive_failed_trials: int | None = 3,
        trial_timeout: float | None = None,
    ) -> None:
        for name, value in (("max_trials", max_trials), ("generations", generations)):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise invalid_value(name, "an integer >= 1 or None", value)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise invalid_value("seed", "a non-negative integer or None", seed)
        search_seed = seed if seed is not None else int(np.random.SeedSequence().entropy % 2**31)
        # KerasTuner treats a seed of 0 as "random": hand it a derived one.
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
        self.search_seed = search_seed
        self._clock = TrialClock(trial_timeout)
        self.trial_timeout = self._clock.timeout
        self._reset_search_state()
        self._deferred_save = False

    def _reset_search_state(self) -> None:
        self._generation = 0  # generations told to the strategy
        self._candidates: list | None = None
        self._assigned: list[str | None] = []  # trial id, "rejected", "reused" or None
        self._fitness: list[float | None] = []
        self._violations: list[float | None] = []  # of rejected candidates, when known
        self._history: list[dict] = []
        self._crashed: set[str] = set()
        self._rejected_generations_in_a_row = 0
        self._clock.set_state(None)
        #: Why the search ended (`None` while it goes on).
        self.stop_reason: str | None = None

    # What a strategy provides -----------------------------------------------------------

    def _strategy_started(self) -> bool:
        raise NotImplementedError

    def _start_strategy(self) -> None:
        raise NotImplementedError

    def _propose(self) -> list:
        """The next generation's candidates (JSON-serialisable)."""
        raise NotImplementedError

    def _values(self, index: int) -> dict:
        """The hyperparameter values of candidate ``index`` of the generation in flight."""
        raise NotImplementedError

    def _tell(self, fitness: list[float]) -> None:
        """Tells the strategy the generation's fitness (minimised, as :meth:`_told_fitness`)."""
        raise NotImplementedError

    def _strategy_state(self) -> dict:
        raise NotImplementedError

    def _set_strategy_state(self, saved: dict) -> None:
        raise NotImplementedError

    def _screen(self, values: dict) -> tuple[bool, float | None]:
        """``(keep, violation)``: whether to train a candidate and, if rejected, by how much it
        breaks the screen's condition (`None` when unknown). Defaults to keeping every one."""
        return True, None

    def _reused_fitness(self, values: dict) -> float | None:
        """A fitness the candidate can reuse without training (`None`: train it)."""
        return None

    def _told_fitness(self) -> list[float]:
        """The generation's fitness as the strategy is told it."""
        return list(self._fitness)

    def _strategy_stop_reason(self) -> str | None:
        """Why the strategy itself stops (`None`: it goes on)."""
        return None

    def _history_extra(self) -> dict:
        """More entries of a finished generation's history record."""
        return {}

    def _history_candidates(self) -> list:
        return self._candidates

    # Generations ------------------------------------------------------------------------

    def _ask(self) -> None:
        self._candidates = self._propose()
        self._assigned = [None] * len(self._candidates)
        self._fitness = [None] * len(self._candidates)
        self._violations = [None] * len(self._candidates)

    def _maybe_tell(self) -> None:
        """Tells the strategy the generation once every candidate has a fitness."""
        if self._candidates is None or any(f is None for f in self._fitness):
            return
        self._tell(self._told_fitness())
        untrained = (REJECTED, REUSED)
        trained = [
            f for f, who in zip(self._fitness, self._assigned, strict=True) if who not in untrained
        ]
        finite = [f for f in trained if math.isfinite(f)]
        scored = [
            f
            for f, who in zip(self._fitness, self._assigned, strict=True)
            if who != REJECTED and math.isfinite(f)
        ]
        rejected = self._assigned.count(REJECTED)
        abandoned = self._clock.in_generation(self._generation)
        self._history.append(
            {
                "generation": self._generation,
                "candidates": self._history_candidates(),
                # Trained (or reused) candidates' fitness; None for rejected, failed, diverged.
                "fitness": [
                    f if who != REJECTED and math.isfinite(f) else None
                    for f, who in zip(self._fitness, self._assigned, strict=True)
                ],
                "trial_ids": self._assigned,
                "violations": self._violations,
                "rejected": rejected,
                "reused": self._assigned.count(REUSED),
                "failed": len(trained) - len(finite),
                "abandoned": len(abandoned),
                "abandoned_trial_ids": abandoned,
                "best_fitness": min(scored) if scored else None,
                "median_fitness": float(np.median(scored)) if scored else None,
                **self._history_extra(),
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
        else:
            self.stop_reason = self._strategy_stop_reason()
        return self.stop_reason is not None

    def populate_space(self, trial_id: str) -> dict:
        """Serves the next candidate of the generation in flight, or IDLE, or STOPPED."""
        if not self._strategy_started():
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
            reused = self._reused_fitness(values) if keep else None
            if not keep or reused is not None:
                self._assigned[index] = REJECTED if not keep else REUSED
                # Rejected ones are told as ``_told_fitness`` says.
                self._fitness[index] = FAILED_FITNESS if not keep else reused
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
        self._trial_scored(trial)
        self._maybe_tell()

    def _trial_scored(self, trial) -> None:
        """Called when a trial of the generation in flight has its fitness."""

    @keras_tuner.synchronized
    def end_trial(self, trial) -> None:
        """Ends a trial as KerasTuner does, then gives the strategy its fitness (worst if it
        failed). The late end of an abandoned trial is ignored (its candidate was served
        again)."""
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

    # Reporting --------------------------------------------------------------------------

    @property
    def generation(self) -> int:
        """Generations told to the strategy so far."""
        return self._generation

    def candidates_per_generation(self) -> int:
        raise NotImplementedError

    @property
    def history(self) -> list[dict]:
        """One record per finished generation: candidates, fitness, trial ids, counts."""
        return list(self._history)

    def summary(self) -> dict:
        """Where the search stands: generation, trials done/running, rejected and reused
        candidates, abandoned trials (not counted as done or failed), best score."""
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
            "rejected": sum(g["rejected"] for g in self._history) + in_flight.count(REJECTED),
            "reused": sum(g.get("reused", 0) for g in self._history) + in_flight.count(REUSED),
            "abandoned": len(self._clock.abandoned),
            "best_score": None if best_score is None else float(best_score),
            "stop_reason": self.stop_reason,
        }

    # State ------------------------------------------------------------------------------

    def get_state(self) -> dict:
        state = super().get_state()
        state[self.STATE_KEY] = {
            "search_seed": self.search_seed,
            **self._strategy_state(),
            "generation": self._generation,
            "candidates": self._candidates,
            "assigned": self._assigned,
            "fitness": [
                None if f is None else (f if math.isfinite(f) else "inf") for f in self._fitness
            ],
            "violations": self._violations,
            "history": self._history,
            "crashed": sorted(self._crashed),
            "rejected_generations_in_a_row": self._rejected_generations_in_a_row,
            "stop_reason": self.stop_reason,
            "trial_clock": self._clock.get_state(),
        }
        return state

    def set_state(self, state: dict) -> None:
        super().set_state(state)
        saved = state[self.STATE_KEY]
        self.search_seed = saved["search_seed"]
        self._generation = saved["generation"]
        self._candidates = saved["candidates"]
        self._assigned = list(saved["assigned"])
        self._fitness = [
            None if f is None else (FAILED_FITNESS if f == "inf" else float(f))
            for f in saved["fitness"]
        ]
        # A state saved before violations were kept: rejected candidates were told the worst.
        self._violations = list(saved.get("violations") or [None] * len(self._assigned))
        self._history = list(saved["history"])
        self._crashed = set(saved["crashed"])
        self._rejected_generations_in_a_row = saved["rejected_generations_in_a_row"]
        self.stop_reason = saved["stop_reason"]
        self._clock.set_state(saved.get("trial_clock"))
        self._set_strategy_state(saved)

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
