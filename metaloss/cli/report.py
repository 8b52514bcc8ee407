"""`metaloss report`: a search directory rendered as PNG figures and a Markdown summary."""

from __future__ import annotations

from pathlib import Path

import click

from metaloss.cli._common import format_table, quiet_tensorflow

TOP_K = 5


def top_table(record, k: int = TOP_K) -> str:
    """The ``k`` best trials of a ``SearchRecord``: trial, generation (from 1), score, status."""
    rows = [
        (
            t.trial_id,
            None if t.generation is None else t.generation + 1,
            t.score,
            t.status,
            " ".join(f"{v:+.3g}" for v in t.values.values()),
        )
        for t in record.top(k)
    ]
    return format_table(("trial", "generation", "val acc", "status", "parameters"), rows)


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
