"""`metaloss train`: one training run with any loss, written to an output directory."""

from __future__ import annotations

from pathlib import Path

import click

from metaloss._quiet import quiet_tensorflow
from metaloss.cli.options import (
    LossSpec,
    ModelSpec,
    data_split_options,
    dataset_option,
    optimizer_options,
)
from metaloss.experiments.tables import format_table

_SCHEDULES = ["allcnn_c", "alexnet", "constant", "resnet", "wrn"]
RESULT_HEADERS = ("loss", "status", "epochs", "train acc", "val acc", "test acc", "seconds")


def result_row(result) -> tuple:
    return (
        result.loss,
        result.status,
        result.epochs,
        result.train_accuracy,
        result.val_accuracy,
        result.test_accuracy,
        f"{result.seconds:.1f}",
    )


@click.command()
@dataset_option()
@click.option(
    "--model",
    type=ModelSpec(),
    default="mlp",
    show_default=True,
    help="Model name, optionally with arguments: 'wrn:depth=16,width=8'.",
)
@click.option(
    "--loss",
    type=LossSpec(),
    default="cross_entropy",
    show_default=True,
    help="Loss name, 'name:key=value,...', or a JSON loss file (e.g. best_loss.json).",
)
@click.option("--epochs", type=click.IntRange(min=1), default=20, show_default=True)
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Seeds weights, data split, shuffling and augmentation.",
)
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Output directory. Defaults to runs/<dataset>-<model>-<loss>-s<seed>.",
)
@optimizer_options(lr_help="Initial learning rate. Defaults to the schedule's (0.1; Adam 0.001).")
@click.option(
    "--schedule",
    type=click.Choice(_SCHEDULES),
    default="constant",
    show_default=True,
    help="Learning-rate schedule of the TaylorGLO papers' CIFAR experiments.",
)
@data_split_options
@click.option("--jit/--no-jit", default=None, help="XLA-compile the train step.")
@click.option("--resume", is_flag=True, help="Continue an interrupted run in --output.")
@click.option("--overwrite", is_flag=True, help="Replace the results already in --output.")
def train(
    dataset,
    model,
    loss,
    epochs,
    seed,
    output,
    batch_size,
    optimizer,
    lr,
    momentum,
    weight_decay,
    schedule,
    validation_split,
    subset_fraction,
    data_dir,
    jit,
    resume,
    overwrite,
):
    """Train a model with a loss and write model.keras, history, results and a curve PNG.

    Example: metaloss train --dataset mnist1d --model mlp --loss baikal --epochs 20
    """
    if resume and overwrite:
        raise click.UsageError("--resume and --overwrite exclude each other.")
    if output is None:
        loss_label = Path(loss).stem if loss.endswith(".json") else loss.split(":")[0]
        output = Path("runs") / f"{dataset}-{model.split(':')[0]}-{loss_label}-s{seed}"
    if (output / "results.json").exists() and not (resume or overwrite):
        raise click.UsageError(
            f"{output} already holds a finished run; pass --overwrite to replace it, or "
            "choose another --output.",
        )
    quiet_tensorflow()
    from metaloss.analysis.plots import plot_history
    from metaloss.training import train_experiment

    try:
        result = train_experiment(
            dataset,
            model,
            loss,
            epochs=epochs,
            seed=seed,
            output=output,
            batch_size=batch_size,
            optimizer=optimizer,
            learning_rate=lr,
            momentum=momentum,
            weight_decay=weight_decay,
            schedule=schedule,
            validation_split=validation_split,
            subset_fraction=subset_fraction,
            data_dir=data_dir,
            jit_compile=jit,
            resume=resume,
        )
    except (ValueError, FileNotFoundError) as error:
        raise click.ClickException(str(error)) from None
    curve = plot_history(
        result.history, output / "training_curves.png", title=f"{dataset} / {model} / {result.loss}"
    )
    click.echo(format_table(RESULT_HEADERS, [result_row(result)]))
    click.echo(f"\n{result.message}")
    click.echo(
        f"Wrote {output / 'model.keras'}, {output / 'history.json'}, "
        f"{output / 'results.json'}, {curve}"
    )
