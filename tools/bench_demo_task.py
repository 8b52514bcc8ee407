"""Benchmark: on which task could a searched loss beat cross-entropy? Validation data only.

Before a demo spends a search on a task, it should be a task where the choice of loss matters:
where some known loss already beats cross-entropy on *validation* accuracy by more than the
noise. For each candidate setting (model, data fraction, epochs) this trains cross-entropy,
label-smoothed cross-entropy (0.1), Baikal, the TaylorGLO reference code's loss and an MSE-like
TaylorGLO on ``--seeds`` seeds (2000.., no search or demo uses them), all in one population, and
prints each loss's mean validation accuracy ± std and its difference from cross-entropy with
Welch's p. The test split is never read.

Run ``python tools/bench_demo_task.py --quick`` for a smoke check.
"""

from __future__ import annotations

import platform
import shlex
import sys
import time

import click

from metaloss._quiet import quiet_tensorflow

quiet_tensorflow()  # before the imports below load TensorFlow: its start-up lines stay hidden

SETTINGS = [("mlp", 0.25, 30), ("mlp", 0.1, 30), ("mlp", 0.25, 60), ("cnn1d", 0.25, 30)]
FIRST_SEED = 2000


def _losses():
    import keras

    from metaloss import losses

    return {
        "cross_entropy": losses.get("cross_entropy", from_logits=True),
        "label smoothing 0.1": keras.losses.CategoricalCrossentropy(
            from_logits=True, label_smoothing=0.1
        ),
        "baikal": losses.get("baikal", from_logits=True),
        "taylor_glo (reference code's)": losses.TaylorGLO.from_reference_code(
            losses.REFERENCE_CODE_EXAMPLE, from_logits=True
        ),
        "taylor_glo (MSE-like)": losses.TaylorGLO([0, 0, 0, -2, 0, 2, 0, 0], from_logits=True),
    }


@click.command()
@click.option("--quick", is_flag=True, help="A smoke check: one setting, 2 seeds, 2 epochs.")
@click.option("--seeds", type=click.IntRange(min=2), default=10, show_default=True)
def main(quick, seeds):
    import numpy as np

    from metaloss.analysis.statistics import summarize, welch_t_test
    from metaloss.search import SearchTask, evaluate_candidates

    settings = [("mlp", 0.25, 2)] if quick else SETTINGS
    seeds = 2 if quick else seeds
    print("command: python " + shlex.join(sys.argv))
    print(
        f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}"
    )
    print(f"MNIST-1D, validation accuracy over seeds {FIRST_SEED}..{FIRST_SEED + seeds - 1}")
    named = _losses()
    for model, fraction, epochs in settings:
        task = SearchTask(
            "mnist1d",
            model,
            epochs=epochs,
            subset_fraction=fraction,
            seed=FIRST_SEED,
            fitness_seeds=seeds,
            abort_epoch=None,
        )
        start = time.perf_counter()
        results = evaluate_candidates(task, list(named.values()), parallel_candidates=len(named))
        scores = {
            name: np.nan_to_num(np.asarray(r.seed_scores, dtype=float), nan=0.0)
            for name, r in zip(named, results, strict=True)
        }
        print(
            f"\n{model}, {fraction:.0%} of the data, {epochs} epochs "
            f"({time.perf_counter() - start:.0f} s)"
        )
        for name, values in scores.items():
            line = f"  {name:<30} {summarize(values)}"
            if name != "cross_entropy":
                test = welch_t_test(values, scores["cross_entropy"])
                line += f"   {test.difference:+.4f} vs cross_entropy, p = {test.p_value:.3g}"
            print(line)


if __name__ == "__main__":
    main()
