"""`metaloss demo`: the main job on the embedded MNIST-1D data, in about five minutes on a CPU.

A small TaylorGLO search (CMA-ES, partial training), then full training of the best loss and of
cross-entropy over several seeds, a comparison table (mean ± std test accuracy) and figures.
"""

from __future__ import annotations

import shutil
import statistics
from pathlib import Path

import click

from metaloss.cli._common import format_table, quiet_tensorflow

DATASET, MODEL = "mnist1d", "mlp"
# The TaylorGLO paper's data-utilisation setting: a quarter of the training data, where
# cross-entropy overfits and a metalearned loss has room to regularise. Sized so that search
# and comparison take about four minutes on two CPU cores.
DEMO_SUBSET_FRACTION = 0.25
DEMO_GENERATIONS = 15
DEMO_POPULATION = 10
DEMO_BUDGET_EPOCHS = 30
DEMO_EPOCHS = 30
DEMO_SEEDS = 3


def _mean_std(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.4f} ± {spread:.4f}"


def _mean_history(histories: list[dict]) -> dict[str, list[float]]:
    keys = set.intersection(*(set(h) for h in histories))
    return {
        key: [statistics.fmean(v) for v in zip(*(h[key] for h in histories), strict=False)]
        for key in sorted(keys)
    }


@click.command()
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("runs/demo"),
    show_default=True,
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the search.")
@click.option("--generations", type=click.IntRange(min=1), default=DEMO_GENERATIONS)
@click.option("--population", type=click.IntRange(min=2), default=DEMO_POPULATION)
@click.option("--budget-epochs", type=click.IntRange(min=1), default=DEMO_BUDGET_EPOCHS)
@click.option(
    "--epochs",
    type=click.IntRange(min=1),
    default=DEMO_EPOCHS,
    show_default=True,
    help="Epochs of the full training runs that compare the losses.",
)
@click.option("--seeds", type=click.IntRange(min=1), default=DEMO_SEEDS, show_default=True)
@click.option(
    "--parallel-candidates",
    type=click.IntRange(min=1),
    default=None,
    help="Candidates trained together in one compiled step. Defaults to the population: a "
    "whole generation at once, about 5x faster than one at a time for this MLP "
    "(BENCHMARKS.md); 1 trains them one after another.",
)
@click.option("--verbose", type=click.IntRange(0, 2), default=1, show_default=True)
def demo(
    output,
    seed,
    generations,
    population,
    budget_epochs,
    epochs,
    seeds,
    parallel_candidates,
    verbose,
):
    """Search a TaylorGLO loss for an MLP on MNIST-1D, then compare it with cross-entropy.

    Both use a quarter of the training data (the papers' data-utilisation setting).

    Writes the search (best_loss.json, report, TensorBoard logs) under --output/search, one
    training run per loss and seed under --output/<loss>/seed<k>, and comparison figures.
    """
    quiet_tensorflow()
    from metaloss.analysis.plots import plot_comparison
    from metaloss.cli.search import summarize_search
    from metaloss.search import SearchTask, TaylorGLOSearch
    from metaloss.training import train_experiment

    parallel_candidates = parallel_candidates or population
    search_dir = output / "search"
    if search_dir.exists():
        shutil.rmtree(search_dir)
    click.echo(
        f"1/2 TaylorGLO search on {DATASET} ({DEMO_SUBSET_FRACTION:.0%} of the training data) "
        f"/ {MODEL}: {generations} generations x {population} candidates, {budget_epochs} "
        f"epochs each, trained {parallel_candidates} at a time"
    )
    tuner = TaylorGLOSearch(
        SearchTask(
            DATASET, MODEL, epochs=budget_epochs, seed=seed, subset_fraction=DEMO_SUBSET_FRACTION
        ),
        generations=generations,
        population_size=population,
        seed=seed,
        parallel_candidates=parallel_candidates,
        directory=search_dir,
    )
    tuner.search(verbose=verbose)
    summarize_search(search_dir)
    best_loss = search_dir / "best_loss.json"

    click.echo(f"\n2/2 Full training, {epochs} epochs, seeds 0..{seeds - 1}")
    runs: dict[str, list] = {"cross_entropy": [], "taylor_glo (searched)": []}
    for label, loss in (("cross_entropy", "cross_entropy"), ("taylor_glo (searched)", best_loss)):
        for k in range(seeds):
            result = train_experiment(
                DATASET,
                MODEL,
                str(loss),
                epochs=epochs,
                seed=k,
                subset_fraction=DEMO_SUBSET_FRACTION,
                output=output / label.split(" ")[0] / f"seed{k}",
                verbose=0,
            )
            runs[label].append(result)
            click.echo(
                f"  {label:<22} seed {k}: test accuracy {result.test_accuracy:.4f} "
                f"({result.seconds:.1f} s)"
            )
    rows = [
        (
            label,
            len(results),
            _mean_std([r.test_accuracy for r in results]),
            _mean_std([r.val_accuracy for r in results]),
            f"{statistics.fmean(r.seconds for r in results):.1f}",
        )
        for label, results in runs.items()
    ]
    figure = plot_comparison(
        {label: _mean_history([r.history for r in results]) for label, results in runs.items()},
        output / "validation_accuracy.png",
        title=f"MNIST-1D ({DEMO_SUBSET_FRACTION:.0%} of the training data), MLP: "
        f"validation accuracy, mean of {seeds} seeds",
    )
    click.echo("\n" + format_table(("loss", "seeds", "test acc", "val acc", "seconds/run"), rows))
    gain = statistics.fmean(r.test_accuracy for r in runs["taylor_glo (searched)"]) - (
        statistics.fmean(r.test_accuracy for r in runs["cross_entropy"])
    )
    click.echo(f"\nSearched TaylorGLO minus cross-entropy, mean test accuracy: {gain:+.4f}")
    click.echo(f"Figures: {figure}, {search_dir / 'report'}/*.png")
    click.echo(f"Train with the searched loss: metaloss train --loss {best_loss}")
