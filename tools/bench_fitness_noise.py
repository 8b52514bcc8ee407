"""Benchmark: does a search's fitness rank candidates as fresh training runs do?

A search crowns the candidate with the best fitness. When the fitness of one candidate is a
noisy measurement (one partial run, one small validation set), the ranking it induces has little
to do with how the candidates train on other seeds, and the crowned one is the luckiest. This
benchmark measures that, on the candidates of a real search:

1. Run a TaylorGLO search at the demo's sizes (one fitness seed, as the reference code does) and
   take its ``--candidates`` N best distinct candidates.
2. Reference: every candidate's mean validation accuracy over ``--fresh-seeds`` F seeds that no
   variant uses (each seed its own split, data order and initial weights). The reference is
   noisy too: its ceiling is the Spearman-Brown reliability ``2ρ_h / (1 + ρ_h)`` from the ρ_h
   between its two halves of seeds (no fitness can agree with the reference better than the
   reference agrees with itself), and cross-entropy's fresh score says whether the candidates
   beat it at all.
3. Each fitness variant scores the same N candidates on the search's seeds:
   - ``R=1``: one run per candidate (the search's own fitness);
   - ``R=3``, ``R=5``: the mean of R runs (``SearchTask(fitness_seeds=R)``);
   - ``R=1, val 30%`` / ``R=3, val 30%``: a held-out split of 30 % instead of 10 %, the
     training subset enlarged so that the candidates train on as many examples as before.
   For each: Spearman's ρ between its scores and the reference, the crowned candidate's
   reference score against the best reference score (regret), and the winner's curse (the
   crowned candidate's variant score minus its reference score). ``cost`` is the number of
   partial trainings per candidate (wall time is close for all: population training).

Goal (issue: search that beats cross-entropy): ρ ≥ 0.6 for the 20 best candidates at the demo's
size with the default fitness. Run ``python tools/bench_fitness_noise.py --quick`` for a smoke
check.
"""

from __future__ import annotations

import dataclasses
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path

import click
import numpy as np

from metaloss._quiet import quiet_tensorflow

quiet_tensorflow()  # before the imports below load TensorFlow: its start-up lines stay hidden

from metaloss.experiments.demo import (  # noqa: E402
    DEMO_BUDGET_EPOCHS,
    DEMO_DATASET,
    DEMO_MODEL,
    DEMO_POPULATION,
    DEMO_SUBSET_FRACTION,
)

FRESH_SEED_OFFSET = 1000  # fresh seeds: seed + 1000 .. (no variant goes that far)
WIDE_VALIDATION = 0.3


def _variants(task, quick: bool) -> dict[str, tuple[object, int]]:
    """name -> (task, partial trainings per candidate)."""
    wide = dataclasses.replace(
        task,
        validation_split=WIDE_VALIDATION,
        # as many training examples as with the narrow split: f (1 - 0.1) = f' (1 - 0.3)
        subset_fraction=min(
            1.0, task.subset_fraction * (1 - task.validation_split) / (1 - WIDE_VALIDATION)
        ),
    )
    variants = {
        "R=1": (task, 1),
        "R=3": (dataclasses.replace(task, fitness_seeds=3), 3),
    }
    if not quick:
        variants["R=5"] = (dataclasses.replace(task, fitness_seeds=5), 5)
        variants[f"R=1, val {WIDE_VALIDATION:.0%}"] = (wide, 1)
        variants[f"R=3, val {WIDE_VALIDATION:.0%}"] = (
            dataclasses.replace(wide, fitness_seeds=3),
            3,
        )
    return variants


def _scores(task, losses) -> np.ndarray:
    return _seed_scores(task, losses).mean(axis=1)


def _seed_scores(task, losses) -> np.ndarray:
    """(candidates, seeds) validation accuracies, 0 where a seed diverged."""
    from metaloss.search import evaluate_candidates

    results = evaluate_candidates(task, losses, parallel_candidates=len(losses))
    return np.nan_to_num(np.asarray([r.seed_scores for r in results], dtype=float), nan=0.0)


@click.command()
@click.option("--quick", is_flag=True, help="A smoke check: a small search, two variants.")
@click.option("--generations", type=click.IntRange(min=1), default=15, show_default=True)
@click.option("--population", type=click.IntRange(min=2), default=DEMO_POPULATION)
@click.option("--candidates", type=click.IntRange(min=3), default=20, show_default=True)
@click.option("--fresh-seeds", type=click.IntRange(min=2), default=10, show_default=True)
@click.option("--budget-epochs", type=click.IntRange(min=1), default=DEMO_BUDGET_EPOCHS)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
def main(quick, generations, population, candidates, fresh_seeds, budget_epochs, seed):
    from scipy import stats

    from metaloss import losses as loss_module
    from metaloss.search import SearchTask, TaylorGLOSearch
    from metaloss.search.reevaluation import distinct_best
    from metaloss.search.results import read_search

    if quick:
        generations, population, candidates, fresh_seeds, budget_epochs = 3, 6, 8, 2, 5
    print("command: python " + shlex.join(sys.argv))
    print(
        f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}"
    )
    task = SearchTask(
        DEMO_DATASET,
        DEMO_MODEL,
        epochs=budget_epochs,
        subset_fraction=DEMO_SUBSET_FRACTION,
        seed=seed,
    )
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as directory:
        tuner = TaylorGLOSearch(
            task,
            generations=generations,
            population_size=population,
            seed=seed,
            parallel_candidates=population,
            tensorboard=False,
            directory=Path(directory),
        )
        tuner.search(verbose=0)
        top = distinct_best(read_search(directory).trials, candidates)
    losses = [
        loss_module.TaylorGLO([t.values[f"theta_{i}"] for i in range(8)], from_logits=True)
        for t in top
    ]
    print(
        f"search: {DEMO_DATASET} / {DEMO_MODEL}, {DEMO_SUBSET_FRACTION:.0%} of the data, "
        f"{generations} generations x {population}, {budget_epochs} epochs, seed {seed}: "
        f"{len(top)} best distinct candidates ({time.perf_counter() - start:.0f} s)"
    )
    fresh = dataclasses.replace(task, seed=seed + FRESH_SEED_OFFSET, fitness_seeds=fresh_seeds)
    reference_runs = _seed_scores(fresh, losses)
    reference = reference_runs.mean(axis=1)
    half = fresh_seeds // 2
    rho_half = stats.spearmanr(
        reference_runs[:, :half].mean(axis=1), reference_runs[:, half:].mean(axis=1)
    ).statistic
    ceiling = 2 * rho_half / (1 + rho_half) if rho_half > -1 else float("nan")
    [ce] = _seed_scores(fresh, [loss_module.get("cross_entropy", from_logits=True)])
    print(
        f"reference: mean validation accuracy over fresh seeds {fresh.seeds[0]}..{fresh.seeds[-1]}"
        f"; its halves agree with rho = {rho_half:.2f} (reliability {ceiling:.2f}); "
        f"cross-entropy there: {ce.mean():.4f} ± {ce.std(ddof=1):.4f}, the candidates "
        f"{reference.min():.4f} .. {reference.max():.4f}"
    )
    header = (
        f"{'fitness':<14} {'cost':>4} {'Spearman rho':>12} {'crowned: fresh':>14} "
        f"{'best fresh':>10} {'regret':>7} {'curse':>7} {'seconds':>7}"
    )
    print("\n" + header + "\n" + "-" * len(header))
    for name, (variant, cost) in _variants(task, quick).items():
        start = time.perf_counter()
        scores = _scores(variant, losses)
        seconds = time.perf_counter() - start
        rho = stats.spearmanr(scores, reference).statistic
        crowned = int(np.argmax(scores))
        print(
            f"{name:<14} {cost:>4} {rho:>12.2f} {reference[crowned]:>14.4f} "
            f"{reference.max():>10.4f} {reference.max() - reference[crowned]:>7.4f} "
            f"{scores[crowned] - reference[crowned]:>+7.4f} {seconds:>7.1f}"
        )
    print(
        "\nrho: rank agreement with the fresh seeds over the candidates; regret: best fresh "
        "score minus the crowned candidate's; curse: the crowned candidate's own score minus "
        "its fresh score."
    )


if __name__ == "__main__":
    main()
