"""`metaloss report`: a search directory rendered as PNG figures and a Markdown summary."""

from __future__ import annotations

from pathlib import Path

import click

from metaloss._quiet import quiet_tensorflow
from metaloss.experiments.tables import format_table

TOP_K = 5


def top_table(record, k: int = TOP_K) -> str:
    """The ``k`` best trials of a ``SearchRecord``: trial, generation (from 1), score, status;
    with a re-evaluation, each re-evaluated candidate's score on fresh seeds next to its search
    score, and the crowned one marked."""
    reevaluation = record.reevaluation or {}
    fresh = {
        e.get("trial_id"): e.get("mean")
        for e in reevaluation.get("candidates") or []
        if e.get("mean") is not None
    }
    crowned = reevaluation.get("best_trial_id") if reevaluation.get("complete") else None
    trials = record.top(k)
    if crowned is not None and crowned not in {t.trial_id for t in trials} and record.best:
        trials.append(record.best)
    rows = []
    for t in trials:
        row = [
            t.trial_id + (" *" if t.trial_id == crowned else ""),
            None if t.generation is None else t.generation + 1,
            t.score,
        ]
        if fresh:
            row.append(fresh.get(t.trial_id))
        row += [
            t.status,
            " ".join(v if isinstance(v, str) else f"{v:+.3g}" for v in t.values.values()),
        ]
        rows.append(tuple(row))
    headers = ["trial", "generation", "val acc (search)" if fresh else "val acc"]
    if fresh:
        headers.append("fresh seeds")
    table = format_table((*headers, "status", "parameters"), rows)
    if crowned is not None:
        table += "\n* crowned: the best score on fresh seeds (the search's score is biased up)"
    return table


@click.command()
@click.argument(
    "directory", type=click.Path(exists=True, file_okay=False, path_type=Path), metavar="DIRECTORY"
)
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where to write the report. Defaults to DIRECTORY/report.",
)
def report(directory, output):
    """Render a TaylorGLO search directory as figures and a Markdown summary.

    Writes fitness.png (best and median validation accuracy per generation), loss_shape.png
    (the best loss against cross-entropy and Baikal) and report.md. Works on a finished search,
    one still running, and one that was stopped.

    Example: metaloss report runs/search
    """
    quiet_tensorflow()
    from metaloss.search.report import write_report
    from metaloss.search.results import read_search

    try:
        record = read_search(directory)
        markdown = write_report(directory, output)
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    click.echo(f"Wrote {markdown} and its figures.")
    if record.best is None:
        click.echo("No trial has completed yet: there is no best loss.")
        return
    click.echo("\n" + top_table(record))
    if record.best_loss is not None:
        click.echo(f"\nTrain with the best loss: metaloss train --loss {record.best_loss}")
