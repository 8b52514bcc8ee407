"""Re-evaluating a search's best candidates on fresh seeds before crowning one.

A search keeps the candidate with the highest of N noisy scores. That maximum is biased upward
(the winner's curse: ``E[max_i (μ_i + ε_i)] ≥ max_i μ_i``), and when the noise ``ε`` is as large
as the differences between good candidates it crowns the luckiest candidate rather than the
best. Re-training the k best distinct candidates on M seeds that the search never used, and
crowning the best mean there, takes the selection out of the measurement:

```
winner = argmax_j (1/M) Σ_m a_j(s_m),     s_m ∉ the search's seeds,
```

with ``a_j(s)`` the validation accuracy of candidate j after the partial budget on seed s (0
where it diverged). The re-evaluation seeds are the M after the search's own:
``seed + R .. seed + R + M - 1`` for a task on seeds ``seed .. seed + R - 1``.

Everything lives in ``<directory>/reevaluation.json``, rewritten after every seed, so a search
killed during its re-evaluation resumes it at the first unfinished seed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from metaloss.losses._base import invalid_value
from metaloss.search._files import write_json_atomically
from metaloss.search.evaluate import SearchTask, evaluate_candidates

__all__ = [
    "REEVALUATION_FILE",
    "distinct_best",
    "read_reevaluation",
    "reevaluate",
    "seeds_after",
    "winners_curse",
]

REEVALUATION_FILE = "reevaluation.json"


def seeds_after(task: SearchTask, count: int) -> list[int]:
    """The ``count`` seeds after the task's own: ``seed + R .. seed + R + count - 1``."""
    first = task.seed + task.fitness_seeds
    return list(range(first, first + count))


def distinct_best(trials: Sequence, k: int) -> list:
    """The ``k`` best scored trials (``TrialRecord``) whose values differ, best first; ties go
    to the earliest trial."""
    chosen, seen = [], set()
    for trial in sorted((t for t in trials if t.scored), key=lambda t: -t.score):
        # Numbers (θ) compare as floats, strings (expressions) as they are.
        key = tuple(
            sorted(
                (name, v if isinstance(v, str) else float(v)) for name, v in trial.values.items()
            )
        )
        if key in seen:
            continue
        seen.add(key)
        chosen.append(trial)
        if len(chosen) == k:
            break
    return chosen


def read_reevaluation(directory: str | Path) -> dict | None:
    """The content of ``<directory>/reevaluation.json``, or `None` when there is none."""
    path = Path(directory) / REEVALUATION_FILE
    try:
        content = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    return content if isinstance(content, dict) else None


def _fresh(candidates: Sequence[dict], seeds: Sequence[int]) -> dict:
    return {
        "seeds": list(seeds),
        "seeds_done": [],
        "complete": False,
        "best_trial_id": None,
        "candidates": [
            {
                "trial_id": c["trial_id"],
                "values": c["values"],
                "loss": c["loss"],
                "search_score": c["search_score"],
                "search_seed_scores": c.get("search_seed_scores", []),
                "seeds": [],
                "scores": [],
                "statuses": [],
                "mean": None,
            }
            for c in candidates
        ],
    }


def _matches(saved: dict | None, candidates: Sequence[dict], seeds: Sequence[int]) -> bool:
    if saved is None or saved.get("seeds") != list(seeds):
        return False
    return [c.get("trial_id") for c in saved.get("candidates", [])] == [
        c["trial_id"] for c in candidates
    ]


def _crown(state: dict) -> None:
    entries = state["candidates"]
    for entry in entries:
        entry["mean"] = float(np.mean(entry["scores"])) if entry["scores"] else None
    # Best re-evaluated mean; ties go to the better search score, then the earlier rank.
    ranked = sorted(
        range(len(entries)),
        key=lambda i: (-entries[i]["mean"], -entries[i]["search_score"], i),
    )
    state["best_trial_id"] = entries[ranked[0]]["trial_id"] if ranked else None
    state["complete"] = True


def reevaluate(
    directory: str | Path,
    task: SearchTask,
    candidates: Sequence[dict],
    build_loss: Callable[[dict], object],
    *,
    seeds: Sequence[int],
    parallel_candidates: int = 1,
    on_seed: Callable[[int, int], None] | None = None,
) -> dict:
    """Trains every candidate on each of ``seeds`` (task on that seed alone) and crowns the
    best mean; resumes from ``<directory>/reevaluation.json``.

    Args:
        directory: the search directory.
        task: the search's task; each seed runs ``task.with_seed(seed)``.
        candidates: dicts with ``trial_id``, ``values``, ``loss`` (serialized), ``search_score``
            and optionally ``search_seed_scores``, best first.
        build_loss: builds a candidate's loss from its dict.
        seeds: the re-evaluation seeds, disjoint from the search's (:func:`seeds_after`).
        parallel_candidates: train up to this many candidates of a seed at once. Defaults to `1`.
        on_seed: called with ``(done, total)`` after each seed. Defaults to `None`.

    Returns:
        The re-evaluation record written to ``reevaluation.json``: ``seeds``, ``candidates``
        (each with its ``scores`` per seed, ``statuses`` and ``mean``), ``best_trial_id`` and
        ``complete``.
    """
    if not candidates:
        raise invalid_value("candidates", "at least one scored candidate", candidates)
    seeds = list(seeds)
    if len(set(seeds)) != len(seeds) or set(seeds) & set(task.seeds):
        raise invalid_value(
            "seeds", f"distinct seeds disjoint from the search's {task.seeds}", seeds
        )
    directory = Path(directory)
    saved = read_reevaluation(directory)
    state = saved if _matches(saved, candidates, seeds) else _fresh(candidates, seeds)
    losses = [build_loss(c) for c in candidates]
    for seed in seeds:
        if seed in state["seeds_done"]:
            continue
        results = evaluate_candidates(
            task.with_seed(seed),
            losses,
            parallel_candidates=max(1, min(parallel_candidates, len(losses))),
        )
        for entry, result in zip(state["candidates"], results, strict=True):
            entry["seeds"].append(seed)
            entry["scores"].append(0.0 if result.status == "diverged" else float(result.score))
            entry["statuses"].append(result.status)
        state["seeds_done"].append(seed)
        write_json_atomically(directory / REEVALUATION_FILE, state)
        if on_seed is not None:
            on_seed(len(state["seeds_done"]), len(seeds))
    if not state["complete"]:
        _crown(state)
        write_json_atomically(directory / REEVALUATION_FILE, state)
    return state


def winners_curse(state: dict) -> float:
    """Mean over the re-evaluated candidates of (search score − re-evaluated mean): how much
    the search's own scores overstated them."""
    gaps = [
        c["search_score"] - c["mean"]
        for c in state.get("candidates", [])
        if c.get("mean") is not None and math.isfinite(c["search_score"])
    ]
    return float(np.mean(gaps)) if gaps else math.nan
