"""A search directory rendered as figures and a Markdown summary (``metaloss report``).

:func:`write_report` reads a search with :func:`~metaloss.search.results.read_search` and
writes, under ``<directory>/report`` by default, ``fitness.png`` (best and median validation
accuracy per generation), ``loss_shape.png`` (the best loss against cross-entropy and Baikal)
and ``report.md`` (settings, a table per generation, totals, the best candidates and how to use
the best loss). A search still running, killed, or in which no candidate trained reports too.
"""

from __future__ import annotations

import json
import math
import os
import shlex
from pathlib import Path

from metaloss import losses
from metaloss.analysis.plots import plot_loss_shapes, plot_search_progress
from metaloss.search._files import write_text_atomically
from metaloss.search.reevaluation import winners_curse
from metaloss.search.results import (
    CANDIDATE_FILE,
    TRIALS_DIR,
    SearchRecord,
    TrialRecord,
    read_search,
)

__all__ = ["REPORT_DIR", "write_report"]

REPORT_DIR = "report"
FITNESS_FIGURE = "fitness.png"
LOSS_SHAPE_FIGURE = "loss_shape.png"
REPORT_FILE = "report.md"
TOP_K = 5
BASELINES = ("cross_entropy", "baikal")


def _number(value, digits: int = 4) -> str:
    """``digits`` significant digits; "-" for a missing or non-finite value."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def _value(value) -> str:
    """A trial's hyperparameter value: a number (θ) to 4 digits, an expression in backticks."""
    return f"`{value}`" if isinstance(value, str) else _number(float(value))


def _score(value) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.4f}"


def _table(headers, rows) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def _settings_section(record: SearchRecord) -> list[str]:
    settings, task = record.settings, record.settings.get("task") or {}
    if task.get("steps") is not None:
        budget = f"{task['steps']} steps"
    else:
        budget = f"{task.get('epochs')} epochs"
    rows = [
        ("dataset", task.get("dataset")),
        ("model", f"`{task.get('model')}`"),
        ("partial training", f"{budget}, batch {task.get('batch_size')}"),
        ("optimizer", f"{task.get('optimizer')}, schedule {task.get('schedule')}"),
        ("loss space", settings.get("space")),
        ("generations", settings.get("generations")),
        ("population size", settings.get("population_size")),
        ("max trials", settings.get("max_trials")),
        (
            "σ0",
            f"{_number(settings.get('sigma0'))} (the reference's units: steps σ0 × (1, 1, 1, 2, "
            "6, 1, 2, 2) for θ0..θ7)"
            if settings.get("space") == "TaylorGLOSpace"
            and not isinstance(settings.get("sigma0"), list)
            else settings.get("sigma0"),
        ),
        ("seed", settings.get("seed")),
        (
            "fitness",
            f"mean validation accuracy over {task.get('fitness_seeds', 1)} seed(s) "
            f"{task.get('seed')}..{(task.get('seed') or 0) + task.get('fitness_seeds', 1) - 1}",
        ),
        ("invariant prefilter", "on" if settings.get("invariant") else "off"),
        ("rejected candidates told", settings.get("rejected", "worst")),
        (
            "re-evaluation",
            f"top {settings['reevaluate_top']} on {settings.get('reevaluate_seeds')} fresh seeds"
            if settings.get("reevaluate_top")
            else "off",
        ),
        ("classes", settings.get("num_classes")),
    ]
    return ["## Settings", "", *_table(("setting", "value"), [(k, _number(v)) for k, v in rows])]


def _totals(record: SearchRecord) -> dict[str, int]:
    statuses = [t.status for t in record.trials]
    completed = sum(t.scored and t.status == "completed" for t in record.trials)
    aborted = sum(t.scored and t.status == "aborted" for t in record.trials)
    running = statuses.count("running")
    abandoned = statuses.count("abandoned")
    return {
        "trials": len(statuses),
        "completed": completed,
        "aborted": aborted,
        "diverged/failed": len(statuses) - completed - aborted - running - abandoned,
        "abandoned (served again)": abandoned,
        "running": running,
        "rejected (not trained)": record.rejected,
        **({"reused an equivalent's score": record.reused} if record.reused else {}),
    }


def _generations_section(record: SearchRecord, figure: str) -> list[str]:
    lines = ["## Progress", "", f"![best and median validation accuracy]({figure})", ""]
    planned = record.settings.get("generations")
    finished = len(record.generations)
    if planned:
        lines += [f"{finished} of {planned} generations finished.", ""]
    elif finished:
        lines += [f"{finished} generations finished.", ""]
    if not finished:
        lines.append("No generation has finished yet.")
    rows = [
        (
            g["generation"] + 1,
            sum(t not in (None, "rejected") for t in g.get("trial_ids") or []),
            _score(g["best_score"]),
            _score(g["median_score"]),
            g.get("rejected"),
            g.get("failed"),
            _number(g.get("sigma")),
        )
        for g in record.generations
    ]
    if rows:
        headers = ("generation", "trials", "best", "median", "rejected", "failed", "σ")
        lines += _table(headers, rows)
    if record.in_flight is not None:
        flight = record.in_flight
        lines += [
            "",
            f"Generation {flight['generation'] + 1} is in flight: {flight['served']} of "
            f"{flight['candidates']} candidates served ({flight['rejected']} rejected).",
        ]
    lines += ["", f"Best and median are {_fitness(record)} after partial training."]
    return lines


def _fitness(record: SearchRecord) -> str:
    """What the search's scores are: validation accuracies, clean or under FGSM."""
    task = record.settings.get("task") or {}
    if task.get("objective") == "robust":
        loss = "the candidate's own loss" if task.get("attack_loss") == "own" else "cross-entropy"
        return (
            f"validation accuracies on FGSM examples (eps={task.get('attack_eps')}, gradient "
            f"of {loss})"
        )
    return "validation accuracies"


def _top_section(top: list[TrialRecord]) -> list[str]:
    lines = [f"## Top {len(top)} candidates" if top else "## Top candidates", ""]
    if not top:
        return [*lines, "No trial has completed: there are no scored candidates."]
    names = list(top[0].values)
    rows = [
        (
            rank,
            t.trial_id,
            "-" if t.generation is None else t.generation + 1,
            _score(t.score),
            t.status,
            *(_value(t.values[n]) if n in t.values else "-" for n in names),
        )
        for rank, t in enumerate(top, start=1)
    ]
    headers = ("rank", "trial", "generation", "val accuracy", "status", *names)
    return lines + _table(headers, rows)


def _reevaluation_section(record: SearchRecord) -> list[str]:
    """The best candidates' search scores next to their scores on fresh seeds."""
    state = record.reevaluation
    if not state:
        return []
    entries = state.get("candidates") or []
    seeds = state.get("seeds") or []
    lines = [
        "## Re-evaluation on fresh seeds",
        "",
        f"The {len(entries)} best distinct candidates, retrained on seeds "
        f"{', '.join(map(str, seeds))} (the search never used them); the crowned loss is the "
        "best re-evaluated mean. The search's own score of a winner is biased upward (it was "
        "selected for being high): the gap between the two columns is that winner's curse.",
        "",
    ]
    rows = [
        (
            rank,
            entry.get("trial_id"),
            _score(entry.get("search_score")),
            ", ".join(_score(v) for v in entry.get("scores") or []) or "-",
            _score(entry.get("mean")),
            "crowned" if entry.get("trial_id") == state.get("best_trial_id") else "",
        )
        for rank, entry in enumerate(entries, start=1)
    ]
    headers = ("search rank", "trial", "search score", "fresh seeds", "re-evaluated", "")
    lines += _table(headers, rows)
    curse = winners_curse(state)
    if math.isfinite(curse):
        lines += [
            "",
            f"Search score minus re-evaluated score, mean over these candidates: {curse:+.4f}.",
        ]
    if not state.get("complete"):
        done = len(state.get("seeds_done") or [])
        lines += ["", f"Unfinished: {done} of {len(seeds)} seeds done (resume the search)."]
    return lines


def _candidate_file(record: SearchRecord, trial: TrialRecord) -> Path:
    return record.directory / TRIALS_DIR / f"trial_{trial.trial_id}" / CANDIDATE_FILE


def _best_section(record: SearchRecord, figure: str | None) -> list[str]:
    lines = ["## Best loss", ""]
    best = record.best
    if best is None:
        lines.append(
            "No trial has completed (every trained candidate failed or diverged, or none "
            "has finished yet): there is no best loss."
        )
    else:
        where = "" if best.generation is None else f", generation {best.generation + 1}"
        lines.append(
            f"Best score {_score(best.score)} (trial {best.trial_id}{where}): {_fitness(record)}."
        )
        crowned = [
            e
            for e in (record.reevaluation or {}).get("candidates") or []
            if e.get("trial_id") == best.trial_id and e.get("mean") is not None
        ]
        if crowned and (record.reevaluation or {}).get("complete"):
            lines[-1] += (
                f" Crowned by its re-evaluated score {_score(crowned[0]['mean'])} on fresh seeds."
            )
    lines.append("")
    task = record.settings.get("task") or {}
    if record.best_loss is not None:
        path = shlex.quote(str(record.best_loss))
        train = f"metaloss train --loss {path}"
        if task.get("dataset") and task.get("model"):
            train += f" --dataset {task['dataset']} --model {shlex.quote(str(task['model']))}"
        lines += [
            f"Saved as `{record.best_loss}`. Train with it:",
            "",
            "```bash",
            train,
            "```",
            "",
            f'or in Python: `model.compile(loss=metaloss.losses.get("{record.best_loss}"))`.',
        ]
    elif best is not None:
        candidate = _candidate_file(record, best)
        lines += [
            "`best_loss.json` is not written yet (it is written when the search ends); the best "
            f"candidate's loss is the `loss` entry of `{candidate}`:",
            "",
            "```python",
            f'metaloss.losses.deserialize(json.load(open("{candidate}"))["loss"])',
            "```",
        ]
    if figure is not None:
        lines += ["", f"![loss shapes]({figure})", ""]
        lines.append(
            "Loss against the predicted probability p of the true class (the other classes "
            "share 1 − p). Left, the shape: each loss minus its value at p = 0.99, divided by "
            "its largest magnitude (offsets do not change training); its lowest point is where "
            "the loss pulls p. Right, the unscaled slope dL/dp on a symmetric log axis; a "
            "positive slope pushes p down. The dotted line is chance, p = 1/K."
        )
    return lines


def _best_loss(record: SearchRecord):
    """The best loss: ``best_loss.json``, else the best trial's candidate loss, else `None`."""
    if record.best_loss is not None:
        return losses.get(record.best_loss, from_logits=False)
    best = record.best
    if best is None:
        return None
    path = _candidate_file(record, best)
    try:
        return losses.deserialize(json.loads(path.read_text())["loss"])
    except (OSError, KeyError, ValueError):
        return None


def write_report(directory: str | os.PathLike, output: str | os.PathLike | None = None) -> Path:
    """Renders a TaylorGLO search directory as two PNG figures and a Markdown summary.

    Writes ``fitness.png`` (:func:`~metaloss.analysis.plot_search_progress`),
    ``loss_shape.png`` (:func:`~metaloss.analysis.plot_loss_shapes`: the best loss, when there
    is one, against cross-entropy and Baikal) and ``report.md``: the settings, a table per
    generation (numbered from 1), the totals, the top 5 candidates with their parameters, and
    the best loss's file with the command that trains with it. Every file is written through a
    temporary name, so a reader never sees half a file.

    Args:
        directory: the search directory (``TaylorGLOSearch(..., directory=...)``).
        output: where to write. Defaults to `None` (``<directory>/report``).

    Returns:
        The path of ``report.md``.

    Raises:
        ValueError: when ``directory`` is not a search directory.

    Example:

    ```python
    write_report("runs/search")      # PosixPath('runs/search/report/report.md')
    ```
    """
    record = read_search(directory)
    output = Path(output) if output is not None else record.directory / REPORT_DIR
    output.mkdir(parents=True, exist_ok=True)
    task = record.settings.get("task") or {}
    label = f"{task.get('dataset', '?')} / {task.get('model', '?')}"
    plot_search_progress(
        record.generations, output / FITNESS_FIGURE, title=f"TaylorGLO search, {label}"
    )
    named = {name: losses.get(name, from_logits=False) for name in BASELINES}
    best_loss = _best_loss(record)
    if best_loss is not None:
        named = {"best (searched)": best_loss, **named}
    num_classes = int(record.settings.get("num_classes") or 10)
    plot_loss_shapes(
        named, output / LOSS_SHAPE_FIGURE, num_classes=num_classes, title=f"Loss shapes, {label}"
    )
    totals = _totals(record)
    lines = [
        f"# TaylorGLO search report: {label}",
        "",
        f"Search directory: `{record.directory}`",
        "",
        *_settings_section(record),
        "",
        "## Totals",
        "",
        *_table(tuple(totals), [tuple(totals.values())]),
        "",
        *_generations_section(record, FITNESS_FIGURE),
        "",
        *_top_section(record.top(TOP_K)),
        "",
        *_reevaluation_section(record),
        "",
        *_best_section(record, LOSS_SHAPE_FIGURE),
    ]
    return write_text_atomically(output / REPORT_FILE, "\n".join(lines) + "\n")
