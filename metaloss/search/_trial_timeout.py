"""Abandoning the running trials of workers that went silent (killed, or cut off).

KerasTuner's oracle hands each tuner id one ongoing trial and waits for its end for ever: a
worker killed mid-trial leaves its trial RUNNING, and a CMA-ES generation then waits for it
for ever (keras-team/keras-tuner issue #915). A :class:`TrialClock` keeps, as data, the
wall-clock time of each running trial's last report (its creation, a tuner id asking for its
ongoing trial again, or an ``update_trial`` call); :func:`abandon_silent_trials` ends the trials
silent for ``timeout`` seconds or more, so that the oracle can serve their candidates again.

References:
    keras-team/keras-tuner issue #915 (a dead worker stalls the chief) and pull request #645
    (hanging workers after the chief quits).
"""

from __future__ import annotations

import math
import time

from keras_tuner.engine import trial as trial_module

from metaloss.losses._base import invalid_value

__all__ = ["ABANDONED", "TrialClock", "abandon_silent_trials", "check_timeout", "now"]

#: How the message of an abandoned trial begins (its status is KerasTuner's ``FAILED``).
ABANDONED = "abandoned"


def now() -> float:
    """Wall-clock seconds since the epoch (``time.time()``); a test may monkeypatch this."""
    return time.time()


def check_timeout(value) -> float | None:
    """``value`` as seconds, for a ``trial_timeout`` argument: `None`, or a positive number."""
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise invalid_value("trial_timeout", "a positive number of seconds or None", value)
    return float(value)


class TrialClock:
    """When each running trial last reported, and which trials were abandoned.

    A trial is silent for ``now() - last report`` seconds. Times are wall-clock seconds, kept
    in :meth:`get_state` as plain numbers, so a restarted chief goes on counting.

    Args:
        timeout: seconds of silence after which a running trial is abandoned. Defaults to
            `None` (never).
    """

    def __init__(self, timeout: float | None = None) -> None:
        self.timeout = check_timeout(timeout)
        self.last_report: dict[str, float] = {}
        #: trial id -> the generation it was abandoned in.
        self.abandoned: dict[str, int] = {}
        # tuner id -> when it last asked for a trial (not saved: nor are KerasTuner's tuner ids).
        self.last_ask: dict[str, float] = {}

    def reported(self, trial_id: str) -> None:
        """Records a sign of life of ``trial_id`` now."""
        self.last_report[trial_id] = now()

    def asked(self, tuner_id: str) -> None:
        """Records that ``tuner_id`` asked for a trial now."""
        self.last_ask[tuner_id] = now()

    def ended(self, trial_id: str) -> None:
        """Stops timing ``trial_id`` (it ended)."""
        self.last_report.pop(trial_id, None)

    def is_abandoned(self, trial_id: str) -> bool:
        return trial_id in self.abandoned

    def in_generation(self, generation: int) -> list[str]:
        """The trials abandoned while ``generation`` was in flight."""
        return [t for t, g in self.abandoned.items() if g == generation]

    def silent(self, ongoing_trials: dict) -> list[tuple[str, object, float]]:
        """``(tuner id, trial, seconds silent)`` of the ongoing trials silent for too long.

        A trial without a recorded report (a state saved before it was timed) starts its
        clock now.
        """
        if self.timeout is None:
            return []
        time_now = now()
        silent = []
        for tuner_id, trial in ongoing_trials.items():
            last = self.last_report.setdefault(trial.trial_id, time_now)
            if time_now - last >= self.timeout:
                silent.append((tuner_id, trial, time_now - last))
        return silent

    def get_state(self) -> dict:
        return {"last_report": dict(self.last_report), "abandoned": dict(self.abandoned)}

    def set_state(self, state: dict | None) -> None:
        state = state or {}  # a search saved before trials were timed
        self.last_report = {str(k): float(v) for k, v in state.get("last_report", {}).items()}
        self.abandoned = {str(k): int(v) for k, v in state.get("abandoned", {}).items()}


def abandon_silent_trials(oracle, clock: TrialClock, generation: int) -> list[str]:
    """Ends ``oracle``'s ongoing trials that ``clock`` finds silent; returns their ids.

    Each one becomes a ``FAILED`` trial whose message starts with ``"abandoned"``; it leaves
    ``oracle.ongoing_trials`` and its tuner id leaves ``oracle.tuner_ids``, as does a tuner id
    without a trial that has not asked for one for ``clock.timeout`` (a worker killed between
    trials): KerasTuner's chief exits once both are empty, and waits for ever otherwise. A
    tuner id that comes back gets a new trial.
    """
    abandoned = []
    for tuner_id, trial, seconds in clock.silent(oracle.ongoing_trials):
        del oracle.ongoing_trials[tuner_id]
        oracle.tuner_ids.discard(tuner_id)
        clock.ended(trial.trial_id)
        clock.abandoned[trial.trial_id] = generation
        trial.status = trial_module.TrialStatus.FAILED
        trial.message = (
            f"{ABANDONED}: {tuner_id} sent no report for {seconds:.0f} s (trial_timeout="
            f"{clock.timeout:g} s); its candidate was served again and a late result is ignored"
        )
        oracle.end_order.append(trial.trial_id)
        oracle._save_trial(trial)
        print(f"Trial {trial.trial_id} {trial.message}.", flush=True)
        abandoned.append(trial.trial_id)
    if clock.timeout is not None:
        time_now = now()
        for tuner_id in list(oracle.tuner_ids):
            idle = time_now - clock.last_ask.setdefault(tuner_id, time_now)
            if tuner_id not in oracle.ongoing_trials and idle >= clock.timeout:
                oracle.tuner_ids.discard(tuner_id)
    return abandoned
