"""`metaloss online`: AdaLFL online loss learning (and ML3) next to cross-entropy, with files."""

from __future__ import annotations

import json
from pathlib import Path

import click

from metaloss._quiet import quiet_tensorflow
from metaloss.cli.options import ModelSpec, data_split_options, dataset_option, optimizer_options
from metaloss.cli.train import RESULT_HEADERS, result_row
from metaloss.experiments.tables import format_table

COMPARISON_FILE = "comparison.json"
BASELINE_DIRECTORY = "cross_entropy"


@click.command()
@click.option(
    "--method",
    "methods",
    type=click.Choice(["adalfl", "ml3"]),
    multiple=True,
    default=["adalfl"],
    show_default=True,
    help="adalfl: the loss learned offline, then online; ml3: learned offline, then frozen. "
    "Repeat for both: the first writes into --output, each other into --output/<method>.",
)
@dataset_option()
@click.option(
    "--model",
    type=ModelSpec(),
    default="mlp",
    show_default=True,
    help="Model name, optionally with arguments: 'mlp:hidden=[64]'.",
)
@click.option("--epochs", type=click.IntRange(min=1), default=10, show_default=True)
@click.option(
    "--init-steps",
    type=click.IntRange(min=0),
    default=2500,
    show_default=True,
    help="Offline (ML3-style) initialisation steps before training (the paper's 2500).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seeds everything.")
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Output directory. Defaults to runs/<dataset>-<model>-<method>-s<seed>.",
)
@optimizer_options(
    optimizer="adam",
    momentum=0.0,
    lr_help="Base learning rate (of both runs). Defaults to 0.1 (SGD) or 0.001 (Adam).",
    momentum_help="SGD momentum. With 0.9 the one-step meta-gradient keeps steepening the "
    "learned loss until training degrades (see the README).",
)
@click.option(
    "--meta-lr",
    type=click.FloatRange(min=0),
    default=1e-3,
    show_default=True,
    help="Adam learning rate of the loss network (0 freezes it).",
)
@click.option(
    "--inner-lr",
    type=click.FloatRange(min=0, min_open=True),
    default=0.01,
    show_default=True,
    help="Learning rate of the offline phase's plain gradient step (ML3's inner step).",
)
@click.option(
    "--offline-step",
    type=click.Choice(["sgd", "fresh_optimizer"]),
    default="sgd",
    show_default=True,
    help="The offline inner step: a plain gradient step with --inner-lr, or one step of a "
    "new copy of the base optimizer.",
)
@data_split_options
@click.option(
    "--baseline/--no-baseline",
    default=True,
    show_default=True,
    help="Also train with cross-entropy under the same budget, seed and initial weights.",
)
@click.option("--jit/--no-jit", default=None, help="XLA-compile the steps.")
@click.option(
    "--resume",
    is_flag=True,
    help="Continue an interrupted run in --output (AdaLFL and the cross-entropy baseline).",
)
@click.option("--overwrite", is_flag=True, help="Replace the results already in --output.")
def online(
    methods,
    dataset,
    model,
    epochs,
    init_steps,
    seed,
    output,
    batch_size,
    optimizer,
    lr,
    momentum,
    weight_decay,
    meta_lr,
    inner_lr,
    offline_step,
    validation_split,
    subset_fraction,
    data_dir,
    baseline,
    jit,
    resume,
    overwrite,
):
    """Learn a loss online with AdaLFL (or offline with ML3), next to cross-entropy.

    Writes learned_loss.json (usable as `metaloss train --loss learned_loss.json`),
    model.keras, snapshots.json, history.json, results.json and learned_loss_shapes.png per
    method, the cross-entropy run under cross_entropy/, comparison.json (one entry per method
    and cross-entropy) and training_curves.png.

    Example: metaloss online --dataset mnist1d --model mlp --epochs 10 --init-steps 250
    --method adalfl --method ml3
    """
    if resume and overwrite:
        raise click.UsageError("--resume and --overwrite exclude each other.")
    if output is None:
        output = Path("runs") / f"{dataset}-{model.split(':')[0]}-{methods[0]}-s{seed}"
    if (output / "results.json").exists() and not (resume or overwrite):
        raise click.UsageError(
            f"{output} already holds a finished run; pass --overwrite to replace it, or "
            "choose another --output.",
        )
    quiet_tensorflow()
    from metaloss.analysis.plots import plot_comparison, plot_learned_loss_snapshots
    from metaloss.search.online_experiment import LEARNED_LOSS_FILE, online_experiment
    from metaloss.training import train_experiment

    common = {
        "epochs": epochs,
        "seed": seed,
        "batch_size": batch_size,
        "optimizer": optimizer,
        "learning_rate": lr,
        "momentum": momentum,
        "weight_decay": weight_decay,
        "validation_split": validation_split,
        "subset_fraction": subset_fraction,
        "data_dir": data_dir,
        "jit_compile": jit,
    }
    methods = list(dict.fromkeys(methods))  # each method once, in the order given
    directories = {
        method: output if index == 0 else output / method for index, method in enumerate(methods)
    }
    runs, snapshots = {}, {}
    try:
        for method, directory in directories.items():
            click.echo(
                f"{_NAMES[method]} on {dataset} / {model}: {init_steps} offline steps, then "
                f"{epochs} epochs" + (" with the loss frozen" if method == "ml3" else ""),
                err=True,
            )
            run = online_experiment(
                dataset,
                model,
                init_steps=init_steps,
                meta_learning_rate=meta_lr,
                inner_lr=inner_lr,
                offline_step=offline_step,
                output=directory,
                resume=resume,
                method=method,
                **common,
            )
            runs[method], snapshots[method] = run.experiment, run.online.snapshots
        if baseline:
            click.echo(f"Cross-entropy on {dataset} / {model}: {epochs} epochs", err=True)
            runs["cross_entropy"] = train_experiment(
                dataset,
                model,
                "cross_entropy",
                output=output / BASELINE_DIRECTORY,
                resume=resume,
                **common,
            )
    except (ValueError, FileNotFoundError) as error:
        raise click.ClickException(str(error)) from None
    shapes = [
        plot_learned_loss_snapshots(
            snapshots[method],
            directory / "learned_loss_shapes.png",
            title=f"{_NAMES[method]} learned loss during training ({dataset} / {model})",
        )
        for method, directory in directories.items()
    ]
    curves = plot_comparison(
        {name: run.history for name, run in runs.items()},
        output / "training_curves.png",
        title=f"{dataset} / {model}: validation accuracy",
    )
    comparison = output / COMPARISON_FILE
    comparison.write_text(
        json.dumps({name: run.to_dict() for name, run in runs.items()}, indent=2) + "\n"
    )
    click.echo(format_table(RESULT_HEADERS, [result_row(run) for run in runs.values()]))
    for method in methods:
        click.echo(f"\n{_NAMES[method]}: {runs[method].message}")
    learned = output / LEARNED_LOSS_FILE
    click.echo(
        f"Wrote {learned} (use it with `metaloss train --loss {learned}`), "
        f"{output / 'model.keras'}, {comparison}, {', '.join(map(str, shapes))}, {curves}"
    )


_NAMES = {"adalfl": "AdaLFL", "ml3": "ML3"}
