"""Benchmark: what CMA-ES should be told of candidates the TaylorGLO invariant rejects.

Two rules (``CMAESOracle(rejected=...)``), each run as a search at the demo's sizes from
``--search-seeds`` seeds, every search stopped at the same number of *trained* candidates
(``max_trials``; rejected candidates cost no training):

- ``worst``: the reference's rule, every rejected candidate the worst fitness (they tie);
- ``ranked``: rejected candidates worse than every trained one, ordered by how far they break
  the invariant, so that CMA-ES learns which way is feasible.

A search's outcome is its crowned loss's mean validation accuracy on ``--fresh-seeds`` seeds no
search used. Reported per rule: mean ± std over search seeds, Welch's p of the difference, and
the candidates rejected and generations needed to train ``--trained`` of them.

Run ``python tools/bench_rejected_rule.py --quick`` for a smoke check.
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

from metaloss._quiet import quiet_tensorflow

quiet_tensorflow()  # before the imports below load TensorFlow: its start-up lines stay hidden

from metaloss.experiments.demo import (  # noqa: E402
    DEMO_BUDGET_EPOCHS,
    DEMO_DATASET,
    DEMO_FITNESS_SEEDS,
    DEMO_MODEL,
    DEMO_POPULATION,
    DEMO_SUBSET_FRACTION,
)

FRESH_SEED_OFFSET = 1000
RULES = ("worst", "ranked")


def _one_search(task, rule, seed, trained, population):
    from metaloss.search import TaylorGLOSearch

    with tempfile.TemporaryDirectory() as directory:
        tuner = TaylorGLOSearch(
            task,
            max_trials=trained,
            population_size=population,
            seed=seed,
            rejected=rule,
            parallel_candidates=population,
            tensorboard=False,
            directory=Path(directory),
        )
        tuner.search(verbose=0)
        rejected = sum(g["rejected"] for g in tuner.oracle.history)
        return tuner.best_loss(), rejected, tuner.oracle.generation


@click.command()
@click.option("--quick", is_flag=True, help="A smoke check: two search seeds, tiny budget.")
@click.option("--search-seeds", type=click.IntRange(min=2), default=5, show_default=True)
@click.option("--trained", type=click.IntRange(min=2), default=50, show_default=True)
@click.option("--fresh-seeds", type=click.IntRange(min=1), default=3, show_default=True)
@click.option("--budget-epochs", type=click.IntRange(min=1), default=DEMO_BUDGET_EPOCHS)
@click.option("--fitness-seeds", type=click.IntRange(min=1), default=DEMO_FITNESS_SEEDS)
def main(quick, search_seeds, trained, fresh_seeds, budget_epochs, fitness_seeds):
    from metaloss.analysis.statistics import summarize, welch_t_test
    from metaloss.search import SearchTask, evaluate_candidates

    population = DEMO_POPULATION
    if quick:
        search_seeds, trained, fresh_seeds, budget_epochs, population = 2, 6, 1, 2, 4
    print("command: python " + shlex.join(sys.argv))
    print(
        f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}"
    )
    print(
        f"searches: {DEMO_DATASET} / {DEMO_MODEL}, {DEMO_SUBSET_FRACTION:.0%} of the data, "
        f"population {population}, {budget_epochs} epochs, {fitness_seeds} fitness seeds, "
        f"stopped at {trained} trained candidates; search seeds 0..{search_seeds - 1}; "
        f"crowned loss scored on {fresh_seeds} fresh seeds"
    )
    outcomes = {rule: [] for rule in RULES}
    print(f"\n{'rule':<7} {'seed':>4} {'fresh score':>11} {'rejected':>8} {'gens':>4} {'s':>5}")
    for seed in range(search_seeds):
        task = SearchTask(
            DEMO_DATASET,
            DEMO_MODEL,
            epochs=budget_epochs,
            subset_fraction=DEMO_SUBSET_FRACTION,
            seed=seed,
            fitness_seeds=fitness_seeds,
        )
        fresh = dataclasses.replace(
            task, seed=FRESH_SEED_OFFSET + 10 * seed, fitness_seeds=fresh_seeds
        )
        for rule in RULES:
            start = time.perf_counter()
            loss, rejected, generations = _one_search(task, rule, seed, trained, population)
            [result] = evaluate_candidates(fresh, [loss])
            score = 0.0 if result.status == "diverged" else result.score
            outcomes[rule].append(score)
            print(
                f"{rule:<7} {seed:>4} {score:>11.4f} {rejected:>8} {generations:>4} "
                f"{time.perf_counter() - start:>5.0f}",
                flush=True,
            )
    print()
    for rule in RULES:
        print(f"{rule:<7} crowned loss on fresh seeds: {summarize(outcomes[rule])}")
    test = welch_t_test(outcomes["ranked"], outcomes["worst"])
    print(f"ranked - worst: {test.difference:+.4f}, Welch's p = {test.p_value:.3g}")


if __name__ == "__main__":
    main()
