"""`metaloss demo`: the main job on the embedded MNIST-1D data, in about five minutes on a CPU.

A TaylorGLO search (CMA-ES, partial training, each candidate scored on several seeds, the best
re-evaluated on fresh seeds), then full training of the crowned loss and of cross-entropy on
seeds the search never used, mean ± std, the difference and Welch's p, a table and figures.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import statistics
import sys
import time
from pathlib import Path

import click

from metaloss._quiet import quiet_tensorflow
from metaloss.cli.options import candidate_scoring_options
from metaloss.experiments.demo import (
    DEMO_BUDGET_EPOCHS,
    DEMO_DATASET,
    DEMO_EPOCHS,
    DEMO_FITNESS_SEEDS,
    DEMO_GENERATIONS,
    DEMO_MODEL,
    DEMO_POPULATION,
    DEMO_REEVALUATE_SEEDS,
    DEMO_REEVALUATE_TOP,
    DEMO_SEARCH_SUBSET_FRACTION,
    DEMO_SEARCH_VALIDATION_SPLIT,
    DEMO_SEEDS,
    DEMO_SUBSET_FRACTION,
)
from metaloss.experiments.tables import format_table


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
@candidate_scoring_options(
    fitness_seeds=DEMO_FITNESS_SEEDS,
    reevaluate_top=DEMO_REEVALUATE_TOP,
    reevaluate_seeds=DEMO_REEVALUATE_SEEDS,
)
@click.option(
    "--epochs",
    type=click.IntRange(min=1),
    default=DEMO_EPOCHS,
    show_default=True,
    help="Epochs of the full training runs that compare the losses.",
)
@click.option(
    "--seeds",
    type=click.IntRange(min=2),
    default=DEMO_SEEDS,
    show_default=True,
    help="Seeds of the final comparison, all after the search's and the re-evaluation's.",
)
@click.option(
    "--parallel-candidates",
    type=click.IntRange(min=1),
    default=None,
    help="Candidates trained together in one compiled step. Defaults to the population: a "
    "whole generation at once, about 5x faster than one at a time for this MLP "
    "(BENCHMARKS.md); 1 trains them one after another.",
)
@click.option("--verbose", type=click.IntRange(0, 2), default=1, show_default=True)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the result as one JSON object on stdout (progress goes to stderr).",
)
def demo(as_json, parallel_candidates, **options):
    """Search a TaylorGLO loss for an MLP on MNIST-1D, then compare it with cross-entropy.

    Both use a quarter of the training data (the papers' data-utilisation setting). The final
    comparison trains both losses on --seeds seeds that neither the search nor its
    re-evaluation used, and tests the difference of mean test accuracy with Welch's t-test.

    Writes the search (best_loss.json, reevaluation.json, report, TensorBoard logs) under
    --output/search, one training run per loss and seed under --output/<loss>/seed<k>, the
    comparison as --output/comparison.json, and comparison figures.
    """
    quiet_tensorflow()
    stream = sys.stderr if as_json else sys.stdout
    with contextlib.redirect_stdout(stream):
        result = _run_demo(
            parallel_candidates=parallel_candidates or options["population"], **options
        )
    if as_json:
        click.echo(json.dumps(result))


def _run_demo(
    *,
    output,
    seed,
    generations,
    population,
    budget_epochs,
    fitness_seeds,
    reevaluate_top,
    reevaluate_seeds,
    epochs,
    seeds,
    parallel_candidates,
    verbose,
) -> dict:
    from metaloss.analysis.plots import plot_comparison
    from metaloss.analysis.statistics import summarize, welch_t_test
    from metaloss.cli.search import summarize_search
    from metaloss.search import SearchTask, TaylorGLOSearch
    from metaloss.search.reevaluation import seeds_after
    from metaloss.training import population_runs

    search_dir = output / "search"
    for previous in (search_dir, output / "cross_entropy", output / "taylor_glo"):
        if previous.exists():  # a demo starts afresh: no run of an earlier loss is reused
            shutil.rmtree(previous)
    task = SearchTask(
        DEMO_DATASET,
        DEMO_MODEL,
        epochs=budget_epochs,
        seed=seed,
        validation_split=DEMO_SEARCH_VALIDATION_SPLIT,
        subset_fraction=DEMO_SEARCH_SUBSET_FRACTION,
        fitness_seeds=fitness_seeds,
    )
    click.echo(
        f"1/2 TaylorGLO search on {DEMO_DATASET} ({DEMO_SUBSET_FRACTION:.0%} of the training "
        f"data) / {DEMO_MODEL}: {generations} generations x {population} candidates, "
        f"{budget_epochs} epochs each on seeds {task.seeds[0]}..{task.seeds[-1]} (scored on a "
        f"{DEMO_SEARCH_VALIDATION_SPLIT:.0%} validation split), trained {parallel_candidates} at "
        "a time"
        + (
            f"; the best {reevaluate_top} then re-evaluated on {reevaluate_seeds} fresh seeds"
            if reevaluate_top
            else ""
        )
    )
    tuner = TaylorGLOSearch(
        task,
        generations=generations,
        population_size=population,
        seed=seed,
        reevaluate_top=reevaluate_top,
        reevaluate_seeds=reevaluate_seeds,
        parallel_candidates=parallel_candidates,
        directory=search_dir,
    )
    tuner.search(verbose=verbose)
    summarize_search(search_dir)
    best_loss = search_dir / "best_loss.json"

    used = seeds_after(task, reevaluate_seeds if reevaluate_top else 0)
    first = used[-1] + 1 if used else task.seeds[-1] + 1
    comparison_seeds = list(range(first, first + seeds))
    click.echo(
        f"\n2/2 Full training, {epochs} epochs, seeds {comparison_seeds[0]}.."
        f"{comparison_seeds[-1]} (disjoint from the search's {task.seeds[0]}.."
        f"{(used or task.seeds)[-1]})"
    )
    # Both losses on every seed, trained together as one population (each run as
    # train_experiment would train it, files included).
    start = time.perf_counter()
    runs = population_runs(
        DEMO_DATASET,
        DEMO_MODEL,
        {"cross_entropy": "cross_entropy", "taylor_glo": str(best_loss)},
        comparison_seeds,
        output,
        epochs=epochs,
        subset_fraction=DEMO_SUBSET_FRACTION,
    )
    runs = {"cross_entropy": runs["cross_entropy"], "taylor_glo (searched)": runs["taylor_glo"]}
    click.echo(f"  {2 * seeds} runs trained together in {time.perf_counter() - start:.0f} s")
    for label, records in runs.items():
        for record in records:
            click.echo(
                f"  {label:<22} seed {record.seed}: test accuracy {record.test_accuracy:.4f}"
            )
    accuracy = {label: [r.test_accuracy for r in records] for label, records in runs.items()}
    summaries = {label: summarize(values) for label, values in accuracy.items()}
    test = welch_t_test(accuracy["taylor_glo (searched)"], accuracy["cross_entropy"])
    rows = [
        (
            label,
            len(records),
            str(summaries[label]),
            str(summarize([r.val_accuracy for r in records])),
        )
        for label, records in runs.items()
    ]
    figure = plot_comparison(
        {label: _mean_history([r.history for r in records]) for label, records in runs.items()},
        output / "validation_accuracy.png",
        title=f"MNIST-1D ({DEMO_SUBSET_FRACTION:.0%} of the training data), MLP: "
        f"validation accuracy, mean of {seeds} seeds",
    )
    click.echo("\n" + format_table(("loss", "seeds", "test acc", "val acc"), rows))
    verdict = (
        "significant at 0.05"
        if test.p_value < 0.05
        else "not significant at 0.05: within the seeds' noise"
    )
    click.echo(
        f"\nSearched TaylorGLO minus cross-entropy, mean test accuracy: {test.difference:+.4f} "
        f"(Welch's t-test over {seeds} seeds each: p = {test.p_value:.3g}, {verdict})"
    )
    click.echo(f"Figures: {figure}, {search_dir / 'report'}/*.png")
    click.echo(f"Train with the searched loss: metaloss train --loss {best_loss}")

    def arm(label):
        return {
            "mean": summaries[label].mean,
            "std": summaries[label].std,
            "values": accuracy[label],
        }

    result = {
        "search_seed": seed,
        "seeds": comparison_seeds,
        "search_seeds": task.seeds,
        "reevaluation_seeds": used,
        "cross_entropy": arm("cross_entropy"),
        "searched": arm("taylor_glo (searched)"),
        "difference": test.difference,
        "p_value": test.p_value,
        "best_loss": str(best_loss),
        "theta": list(tuner.best_loss().theta),
    }
    (output / "comparison.json").write_text(json.dumps(result, indent=2) + "\n")
    return result
