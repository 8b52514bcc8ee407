"""Benchmark: what a TaylorGLO search costs beyond training its candidates, and what the
invariant saves.

1. Search overhead at the demo's sizes. Two variants run side by side in ONE process, each
   repeat alternating their order:
   - ``search``: ``TaylorGLOSearch(...).search()`` (oracle, KerasTuner bookkeeping, trial and
     oracle files, TensorBoard summaries, progress) over ``--generations`` x ``--population``;
   - ``direct``: the very same candidates (read back from the search's trials), trained by
     calling ``evaluate_candidates`` in a plain loop, writing nothing.
   Reported: the median of the per-repeat ratios search / direct, and the share of the search's
   wall time spent outside candidate training, ``1 - Σ candidate seconds / search seconds``
   (target <= 5%).
2. Trainings the invariant saves. (a) For the search above, the share of CMA-ES candidates
   rejected before training. (b) Independently of any training, the share of candidates of
   the first generation's distribution, θ_i ~ N(0, (σ0·s_i)²) with the reference scale
   s = (1, 1, 1, 2, 6, 1, 2, 2), that break the invariant, by Monte Carlo.
   At an equal evaluation budget (the same number of candidates told to CMA-ES) every rejected
   candidate is a training not run.

Run ``python tools/bench_search_overhead.py --quick`` for a smoke check.
"""

from __future__ import annotations

import json
import platform
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

import click
import numpy as np

from metaloss._quiet import quiet_tensorflow

quiet_tensorflow()  # before the imports below load TensorFlow: its start-up lines stay hidden

from metaloss.analysis.decomposition import taylorglo_invariant  # noqa: E402
from metaloss.experiments.demo import DEMO_BUDGET_EPOCHS, DEMO_POPULATION, DEMO_SUBSET_FRACTION  # noqa: E402

TARGET_SHARE = 0.05


def _run_search(task, generations, population, seed, directory):
    from metaloss.search import TaylorGLOSearch

    tuner = TaylorGLOSearch(
        task, generations=generations, population_size=population, seed=seed, directory=directory
    )
    start = time.perf_counter()
    tuner.search(verbose=0)
    seconds = time.perf_counter() - start
    records = [
        json.loads(p.read_text())
        for p in sorted(Path(directory, "trials").glob("trial_*/candidate.json"))
    ]
    rejected = sum(g["rejected"] for g in tuner.oracle.history)
    return seconds, records, rejected


def _run_direct(task, records):
    from metaloss import losses
    from metaloss.search import evaluate_candidates

    candidates = [losses.deserialize(r["loss"]) for r in records]
    start = time.perf_counter()
    for loss in candidates:
        evaluate_candidates(task, [loss])
    return time.perf_counter() - start


def _invariant_rejection_share(samples: int, sigma0: float, num_classes: int) -> float:
    from metaloss.search.spaces import REFERENCE_SCALE

    scale = sigma0 * np.asarray(REFERENCE_SCALE, dtype=float)
    thetas = np.random.default_rng(0).normal(0.0, 1.0, size=(samples, 8)) * scale
    return float(np.mean([not taylorglo_invariant(t, num_classes).holds for t in thetas]))


@click.command()
@click.option("--dataset", default="mnist1d", show_default=True)
@click.option("--model", default="mlp", show_default=True)
@click.option("--generations", type=int, default=2, show_default=True)
@click.option("--population", type=int, default=DEMO_POPULATION, show_default=True)
@click.option("--budget-epochs", type=int, default=DEMO_BUDGET_EPOCHS, show_default=True)
@click.option("--subset-fraction", type=float, default=DEMO_SUBSET_FRACTION, show_default=True)
@click.option("--repeats", type=int, default=3, show_default=True)
@click.option("--quick", is_flag=True, help="1 generation of 4, 1 epoch, 1 repeat.")
def main(dataset, model, generations, population, budget_epochs, subset_fraction, repeats, quick):
    import keras
    import tensorflow as tf

    from metaloss.search import SearchTask

    if quick:
        generations, population, budget_epochs, repeats = 1, 4, 1, 1
    task = SearchTask(dataset, model, epochs=budget_epochs, seed=0, subset_fraction=subset_fraction)
    print(f"command: python {' '.join(shlex.quote(a) for a in sys.argv)}")
    print(
        f"python {platform.python_version()}, tensorflow {tf.__version__}, "
        f"keras {keras.__version__}; {dataset}/{model}, {generations} generations x "
        f"{population}, {budget_epochs} epochs per candidate, {repeats} repeats"
    )
    with tempfile.TemporaryDirectory() as tmp:  # untimed warm-up: imports, first traces
        from metaloss.search import evaluate_candidates

        evaluate_candidates(task, ["cross_entropy"] * 2, log_dirs=[Path(tmp, "a"), None])
        _run_search(task, 1, 2, 1, Path(tmp, "b"))
    ratios, shares, search_times, direct_times, rejected_share = [], [], [], [], []
    for repeat in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            order = ("search", "direct") if repeat % 2 == 0 else ("direct", "search")
            records = None
            if order[0] == "direct":  # the candidates come from an untimed search first
                _, records, _ = _run_search(task, generations, population, 0, Path(tmp, "pre"))
            times = {}
            for variant in order:
                if variant == "search":
                    times["search"], found, rejected = _run_search(
                        task, generations, population, 0, Path(tmp, "search")
                    )
                    records = records or found
                    shares.append(1 - sum(r["seconds"] for r in found) / times["search"])
                    rejected_share.append(rejected / (generations * population))
                else:
                    times["direct"] = _run_direct(task, records)
            ratios.append(times["search"] / times["direct"])
            search_times.append(times["search"])
            direct_times.append(times["direct"])
            print(
                f"repeat {repeat + 1}: search {times['search']:.2f} s, direct "
                f"{times['direct']:.2f} s, ratio {ratios[-1]:.3f}, outside training "
                f"{shares[-1]:.1%}",
                flush=True,
            )
    share = statistics.median(shares)
    print("\n1. Search overhead (medians over repeats)")
    print(f"   search {statistics.median(search_times):.2f} s, direct loop "
          f"{statistics.median(direct_times):.2f} s")  # fmt: skip
    print(f"   ratio search / direct: {statistics.median(ratios):.3f}x")
    print(
        f"   share of search time outside candidate training: {share:.1%} "
        f"(target <= {TARGET_SHARE:.0%}: {'met' if share <= TARGET_SHARE else 'NOT met'})"
    )
    print("\n2. Trainings saved by the invariant")
    print(f"   this search: {statistics.median(rejected_share):.1%} of candidates rejected")
    for n in (10, 100):
        print(
            f"   first generation, N(0, (1.2 s)²) θ, {n} classes: "
            f"{_invariant_rejection_share(100_000, 1.2, n):.1%} rejected (Monte Carlo, 1e5)"
        )


if __name__ == "__main__":
    main()
