"""Reads a TaylorGLO search directory back, without TensorFlow: settings, generations, trials.

A search directory (``TaylorGLOSearch(..., directory=DIR)``) holds ``search.json`` (the
settings), ``trials/oracle.json`` (the oracle state, whose ``cmaes.history`` has one record per
finished generation), ``trials/trial_<id>/trial.json`` (KerasTuner's trial state),
``trials/trial_<id>/candidate.json`` (what the candidate did) and, once the search has ended,
``best_loss.json``. :func:`read_search` reads a finished search, one still running, and one killed
at any moment (a generation in flight, trials without ``candidate.json``) alike.

This module itself imports neither TensorFlow nor Keras (the ``metaloss.search`` package does,
when imported), and its file names mirror those of :mod:`metaloss.search.tuner`.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["SearchRecord", "TrialRecord", "read_search"]

SEARCH_FILE = "search.json"
BEST_LOSS_FILE = "best_loss.json"
TRIALS_DIR = "trials"
ORACLE_FILE = "oracle.json"
CANDIDATE_FILE = "candidate.json"
REEVALUATION_FILE = "reevaluation.json"
TRIAL_FILE = "trial.json"
#: Statuses of trials that trained to a score (an aborted trial is scored at its abort).
SCORED_STATUSES = ("completed", "aborted")


@dataclass(frozen=True)
class TrialRecord:
    """One trial of a search, as its files describe it.

    Attributes:
        trial_id: KerasTuner's trial id, e.g. ``"0004"``.
        generation: the (0-based) CMA-ES generation the candidate belongs to; `None` while its
            generation is still in flight (or when the oracle never recorded it).
        values: the candidate's hyperparameters, ``{name: value}``.
        score: validation accuracy; NaN when there is none (diverged, failed, running).
        status: ``"completed"``, ``"aborted"`` or ``"diverged"`` from ``candidate.json``;
            ``"abandoned"`` for a trial whose worker went silent (its candidate was served
            again; see ``CMAESOracle(trial_timeout=)``); else KerasTuner's status lower-cased
            (``"running"``, ``"failed"``, ...).
        message: a sentence about the status (empty when there is none).
        seconds: training wall time; `None` when unknown.
        seed_scores: ``{seed: score}`` of a candidate scored on several fitness seeds (its
            ``score`` is their mean, a diverged seed counting 0); empty otherwise.
    """

    trial_id: str
    generation: int | None
    values: dict[str, float]
    score: float
    status: str
    message: str = ""
    seconds: float | None = None
    seed_scores: dict[int, float] = field(default_factory=dict)

    @property
    def scored(self) -> bool:
        """Whether the trial trained to a finite score (completed or aborted)."""
        return self.status in SCORED_STATUSES and math.isfinite(self.score)


@dataclass
class SearchRecord:
    """What a search directory holds, as :func:`read_search` returns it.

    Attributes:
        directory: the search directory.
        settings: ``search.json`` (``task``, ``space``, ``generations``, ``population_size``...).
        generations: one dict per finished generation, the oracle's history records
            (``generation``, ``names``, ``candidates``, ``fitness``, ``trial_ids``, ``rejected``,
            ``failed``, ``best_fitness``, ``median_fitness``, ``sigma``) plus ``best_score`` and
            ``median_score``: validation accuracies (``-fitness``), `None` when no candidate of
            the generation trained.
        trials: one :class:`TrialRecord` per trial directory, in trial-id order.
        rejected: candidates the prefilter rejected without training, in-flight ones included.
        reused: candidates that reused an equivalent candidate's score without training
            (EvoMAL's gradient equivalence), in-flight ones included.
        in_flight: the generation still in flight, ``{"generation", "candidates", "served",
            "rejected"}``, or `None`.
        best_loss: the path of ``best_loss.json``, or `None` when it was not written (yet).
        reevaluation: ``reevaluation.json`` (the best candidates retrained on fresh seeds),
            or `None` when the search has none.
    """

    directory: Path
    settings: dict
    generations: list[dict] = field(default_factory=list)
    trials: list[TrialRecord] = field(default_factory=list)
    rejected: int = 0
    reused: int = 0
    in_flight: dict | None = None
    best_loss: Path | None = None
    reevaluation: dict | None = None

    @property
    def best(self) -> TrialRecord | None:
        """The crowned trial: the re-evaluation's winner once a re-evaluation is complete,
        else the best scored (completed or aborted) trial; `None` when none trained.

        Ties go to the earliest trial, as KerasTuner's ``get_best_trials`` breaks them.
        """
        reevaluation = self.reevaluation or {}
        if reevaluation.get("complete"):
            for trial in self.trials:
                if trial.trial_id == reevaluation.get("best_trial_id"):
                    return trial
        top = self.top(1)
        return top[0] if top else None

    def top(self, k: int = 5) -> list[TrialRecord]:
        """The ``k`` best scored trials, best first (fewer when fewer trained).

        Args:
            k: how many trials. Defaults to `5`.

        Returns:
            A list of at most ``k`` :class:`TrialRecord`, highest validation accuracy first.

        Example:

        >>> record.top(1)[0].score        # doctest: +SKIP
        0.4
        """
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(
                f"Invalid value for argument `k`. Expected a positive integer. Received: k={k!r}"
            )
        scored = [t for t in self.trials if t.scored]
        # `sorted` is stable and trials are in id order: ties go to the earliest trial.
        return sorted(scored, key=lambda t: -t.score)[:k]


def _not_a_search(directory, why: str) -> ValueError:
    return ValueError(
        "Invalid value for argument `directory`. Expected a TaylorGLO search directory holding "
        f"{SEARCH_FILE} and {TRIALS_DIR}/{ORACLE_FILE} ({why}). Received: directory="
        f"{os.fspath(directory)!r}"
    )


def _read_json(path: Path):
    """The JSON in ``path`` (NaN allowed, as Python writes it), or `None` if absent or torn."""
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return None


def _score(fitness) -> float | None:
    # CMA-ES minimises -accuracy. 0.0 - f rather than -f: no "-0.0" for a 0 accuracy.
    return None if fitness is None else 0.0 - float(fitness)


def _as_float(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _trial_id_key(trial_id: str):
    return (len(trial_id), trial_id)  # zero-padded ids, but longer ones sort after


def _read_trial(
    trial_dir: Path, generation_of: dict[str, int], abandoned: set[str]
) -> TrialRecord | None:
    candidate = _read_json(trial_dir / CANDIDATE_FILE)
    trial = _read_json(trial_dir / TRIAL_FILE)
    if not isinstance(candidate, dict):
        candidate = None
    if not isinstance(trial, dict):
        trial = None
    if candidate is None and trial is None:
        return None  # a directory created by a kill before anything was written
    trial_id = str(
        (candidate or {}).get("trial_id")
        or (trial or {}).get("trial_id")
        or trial_dir.name.removeprefix("trial_")
    )
    if candidate is not None:
        values = candidate.get("values") or {}
        score = _as_float(candidate.get("score"))
        status = str(candidate.get("status") or "unknown")
        message = candidate.get("message") or ""
        seconds = candidate.get("seconds")
        seed_scores = dict(
            zip(candidate.get("seeds") or [], candidate.get("seed_scores") or [], strict=False)
        )
    else:
        values = ((trial.get("hyperparameters") or {}).get("values")) or {}
        score = _as_float(trial.get("score"))
        status = str(trial.get("status") or "unknown").lower()
        message = trial.get("message") or ""
        seconds = None
        seed_scores = {}
    if trial_id in abandoned:  # a late worker's candidate.json is not this trial's result
        status, score, seconds = "abandoned", math.nan, None
        message = str((trial or {}).get("message") or "abandoned: its worker went silent")
    return TrialRecord(
        trial_id=trial_id,
        generation=generation_of.get(trial_id),
        values={str(k): v for k, v in values.items()},
        score=score,
        status=status,
        message=str(message),
        seconds=None if seconds is None else float(seconds),
        seed_scores={
            int(seed): _as_float(score)
            for seed, score in seed_scores.items()
            if len(seed_scores) > 1
        },
    )


def read_search(directory: str | os.PathLike) -> SearchRecord:
    """Reads a TaylorGLO search directory: settings, finished generations and every trial.

    Args:
        directory: the ``directory`` given to :class:`~metaloss.search.TaylorGLOSearch`.

    Returns:
        A :class:`SearchRecord`. A search still running or killed reads too: its generation in
        flight is in ``in_flight`` and its trials there have ``generation=None``.

    Raises:
        ValueError: when ``directory`` lacks ``search.json`` or ``trials/oracle.json``.

    Example:

    ```python
    record = read_search("runs/search")
    [g["best_score"] for g in record.generations]    # e.g. [0.3667, 0.4, 0.3667]
    record.best.trial_id, record.best.score          # ('0004', 0.4)
    ```
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise _not_a_search(directory, "no such directory")
    settings = _read_json(directory / SEARCH_FILE)
    oracle = _read_json(directory / TRIALS_DIR / ORACLE_FILE)
    if not isinstance(settings, dict):
        raise _not_a_search(directory, f"{SEARCH_FILE} is missing or not a JSON object")
    if not isinstance(oracle, dict):
        raise _not_a_search(directory, f"{TRIALS_DIR}/{ORACLE_FILE} is missing or unreadable")
    # The generations' record: under "cmaes" for TaylorGLO, "evomal" for a symbolic search.
    cmaes = oracle.get("cmaes") or oracle.get("evomal") or {}
    generations = []
    generation_of: dict[str, int] = {}
    for record in cmaes.get("history") or []:
        record = dict(record)
        record["best_score"] = _score(record.get("best_fitness"))
        record["median_score"] = _score(record.get("median_fitness"))
        generations.append(record)
        for trial_id in record.get("trial_ids") or []:
            if trial_id not in (None, "rejected", "reused"):
                generation_of[str(trial_id)] = int(record["generation"])
    rejected = sum(int(g.get("rejected") or 0) for g in generations)
    reused = sum(int(g.get("reused") or 0) for g in generations)
    in_flight = None
    if cmaes.get("candidates") is not None:
        assigned = list(cmaes.get("assigned") or [])
        in_flight = {
            "generation": int(cmaes.get("generation") or 0),
            "candidates": len(cmaes["candidates"]),
            "served": sum(a is not None for a in assigned),
            "rejected": assigned.count("rejected"),
            "reused": assigned.count("reused"),
        }
        rejected += in_flight["rejected"]
        reused += in_flight["reused"]
    trial_dirs = [p for p in (directory / TRIALS_DIR).glob("trial_*") if p.is_dir()]
    abandoned = {str(t) for t in ((cmaes.get("trial_clock") or {}).get("abandoned") or {})}
    trials = [
        record
        for path in trial_dirs
        if (record := _read_trial(path, generation_of, abandoned)) is not None
    ]
    trials.sort(key=lambda t: _trial_id_key(t.trial_id))
    best_loss = directory / BEST_LOSS_FILE
    return SearchRecord(
        directory=directory,
        settings=settings,
        generations=generations,
        trials=trials,
        rejected=rejected,
        reused=reused,
        in_flight=in_flight,
        best_loss=best_loss if best_loss.is_file() else None,
        reevaluation=_read_json(directory / REEVALUATION_FILE),
    )
