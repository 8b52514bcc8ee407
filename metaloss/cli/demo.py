"""`metaloss demo`: the main job on the embedded MNIST-1D data, in a minute or two on a CPU."""

from __future__ import annotations

from pathlib import Path

import click

from metaloss.cli._common import format_table, quiet_tensorflow
from metaloss.cli.train import RESULT_HEADERS, result_row

DEMO_LOSSES = ("cross_entropy", "baikal", "taylor_glo_reference")


@click.command()
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("runs/demo"),
    show_default=True,
)
@click.option("--epochs", type=click.IntRange(min=1), default=15, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
def demo(output, epochs, seed):
    """Train an MLP on MNIST-1D with cross-entropy and zoo losses and compare them.

    Writes each run under --output (model.keras, history, results, curves) and a comparison
    figure of validation accuracy.
    """
    quiet_tensorflow()
    from metaloss.analysis.plots import plot_comparison, plot_history
    from metaloss.training import train_experiment

    results = []
    for loss in DEMO_LOSSES:
        click.echo(f"Training mlp on mnist1d with {loss} for {epochs} epochs...")
        result = train_experiment(
            "mnist1d", "mlp", loss, epochs=epochs, seed=seed, output=output / loss
        )
        plot_history(result.history, output / loss / "training_curves.png", title=loss)
        results.append(result)
    figure = plot_comparison(
        {r.loss: r.history for r in results},
        output / "validation_accuracy.png",
        title="MNIST-1D, MLP: validation accuracy per loss",
    )
    click.echo("\n" + format_table(RESULT_HEADERS, [result_row(r) for r in results]))
    click.echo(f"\nFigures: {figure} and <loss>/training_curves.png under {output}")
    click.echo(f"Train with a saved loss: metaloss train --loss {output / 'baikal' / 'loss.json'}")
