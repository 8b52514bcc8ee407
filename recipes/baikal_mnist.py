"""Baikal against cross-entropy on MNIST, on the full training data and on a reduced share.

Reproduces the Baikal paper's MNIST comparison and its data-utilisation claim: a metalearned loss
loses less accuracy than cross-entropy when the training set shrinks. Every arm (loss ×
training fraction) is trained with seeds 0..N-1 on the same splits and initial weights.

Full scale (the defaults): MNIST with the 55k/5k validation split, the zoo's ``cnn``, SGD with
learning rate 0.01 and momentum 0.9, batch 100, 20 000 steps per run whatever the fraction,
training fractions 1.0 and 0.1, 5 seeds. MNIST's files are read from ``--data-dir`` (or the Keras
cache, downloading if allowed). ``--smoke``: scikit-learn's digits, an MLP, 30 steps, 2 seeds.

Writes ``results.json``, ``results.md``, per-seed and validation-curve figures, and one run
directory per arm and seed (``<loss>_f<fraction>/seed<k>``). Rerun the same command to resume.

References:
    Gonzalez & Miikkulainen, *Improved Training Speed, Accuracy, and Data Utilization Through
    Loss Function Optimization*, arXiv 1905.11528.
"""

from __future__ import annotations

import click

from metaloss.cli.recipe_tools import apply_smoke, command_line, float_list, recipe_options
from metaloss.experiments import (
    comparison_section,
    prepare_output,
    run_printer,
    training_run,
    write_results,
)

SMOKE = {
    "dataset": "digits",
    "model": "mlp",
    "steps": 30,
    "batch_size": 64,
    "seeds": 2,
    "fractions": [1.0, 0.5],
}
LOSSES = {"cross_entropy": "cross_entropy", "baikal": "baikal"}


@click.command()
@recipe_options("baikal_mnist")
@click.option("--dataset", default="mnist", show_default=True)
@click.option("--model", default="cnn", show_default=True)
@click.option(
    "--fractions",
    callback=float_list,
    default="1.0,0.1",
    show_default=True,
    help="Training-data fractions, each a separate comparison.",
)
@click.option("--steps", type=click.IntRange(min=1), default=20_000, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--lr", "learning_rate", type=float, default=0.01, show_default=True)
@click.option("--momentum", type=float, default=0.9, show_default=True)
@click.option("--data-dir", type=click.Path(file_okay=False), default=None)
@click.option("--jit-compile/--no-jit-compile", default=None)
def main(**_):
    """Baikal vs cross-entropy on MNIST, full and reduced training data."""
    ctx = click.get_current_context()
    p = apply_smoke(ctx, SMOKE)
    if not all(0 < f <= 1 for f in p["fractions"]):
        raise click.BadParameter(
            f"expected fractions in (0, 1], got {p['fractions']}", param_hint="'--fractions'"
        )
    output = p["output"]
    settings = prepare_output(output, p, overwrite=p["overwrite"])
    from metaloss.training import run_seeds

    validation_split = 1 / 12 if p["dataset"] == "mnist" else 0.1  # MNIST: 55k/5k
    sections = []
    for fraction in p["fractions"]:
        click.echo(f"Training fraction {fraction:g}: {p['steps']} steps per run")
        arms = {}
        for label, loss in LOSSES.items():
            run = training_run(
                p,
                p["dataset"],
                p["model"],
                loss,
                epochs=None,
                optimizer="sgd",
                validation_split=validation_split,
                subset_fraction=fraction,
            )
            arms[label] = run_seeds(
                run,
                range(p["seeds"]),
                output / f"{label}_f{fraction:g}",
                on_result=run_printer(label),
            )
        sections.append(
            comparison_section(
                output,
                title=f"{fraction:.0%} of the training data",
                arms=arms,
                baseline="cross_entropy",
                name=f"fraction{fraction:g}",
            )
        )
    write_results(
        output,
        title=f"Baikal vs cross-entropy: {p['dataset']} / {p['model']}, {p['steps']} steps",
        command=command_line(ctx, "baikal_mnist.py"),
        settings=settings,
        sections=sections,
    )


if __name__ == "__main__":
    main()
