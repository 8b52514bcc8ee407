"""Benchmark: K candidates trained together (one population) against one after another.

Side by side in ONE process, reporting RATIOS. Each configuration (model, with or without XLA)
scores the same K TaylorGLO candidates on the same `SearchTask` twice per repeat: through
``evaluate_candidates(task, candidates)`` (sequential: K model builds, K traced steps, K
training loops) and through ``evaluate_candidates(task, candidates, parallel_candidates=K)``
(one `PopulationTrainer`: one build, one traced step for all K). The order alternates between
repeats; a warm-up run of each path comes first. Reported: median seconds for the K
candidates, candidates per second, the median of the within-repeat speed-ups, and the largest
difference between the two paths' fitness values (they train the same replicas, so it should be
float round-off, or a validation example or two where round-off flips a prediction).

Run ``python tools/bench_population.py --quick`` for a smoke check.
"""

from __future__ import annotations

import os
import platform
import shlex
import statistics
import sys
import time

import click

from metaloss._quiet import quiet_tensorflow

quiet_tensorflow()  # before the imports below load TensorFlow: its start-up lines stay hidden

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from bench_loss_overhead import _interleaved, _timed  # noqa: E402

import metaloss  # noqa: E402
from metaloss.losses import TaylorGLO  # noqa: E402
from metaloss.search import SearchTask, evaluate_candidates  # noqa: E402
from metaloss.training import PopulationTrainer, Trainer  # noqa: E402
from metaloss.training.experiment import build_model  # noqa: E402

TARGET = 4.0  # K = 8 together must be at least this many times faster
# Candidates around the MSE-like point θ3 = -2, θ5 = 2 (spread as a CMA-ES generation's).
_CENTRE = np.array([0, 0, 0, -2, 0, 2, 0, 0], dtype="float64")


def candidates(k: int, seed: int = 0) -> list[TaylorGLO]:
    """K TaylorGLO losses drawn around an MSE-like θ."""
    thetas = _CENTRE + 0.5 * np.random.default_rng(seed).normal(size=(k, len(_CENTRE)))
    return [TaylorGLO(theta, from_logits=True) for theta in thetas]


def bench_steps(task: SearchTask, k: int, repeats: int, steps: int) -> dict:
    """One compiled step: K Trainer steps (one per candidate) against one population step."""
    data = task.load_data()
    x, y = next(iter(data.train))
    losses = candidates(k)
    trainers = [
        Trainer(build_model(task.model, data), loss, "sgd", jit_compile=task.jit_compile)
        for loss in losses
    ]
    population = PopulationTrainer(
        build_model(task.model, data), losses, "sgd", jit_compile=task.jit_compile
    )

    def sequential() -> None:
        for _ in range(steps):
            for trainer in trainers:
                trainer._train_step(x, y)
        trainers[-1].optimizer.iterations.numpy()  # waits for queued work

    def together() -> None:
        for _ in range(steps):
            population._train_step(x, y)
        population.optimizer.iterations.numpy()

    sequential(), together()  # trace and warm up
    times = _interleaved(
        {"sequential": _timed(sequential), "together": _timed(together)}, repeats, 1
    )
    per_step = {name: 1e3 * statistics.median(t) / (steps * k) for name, t in times.items()}
    ratio = statistics.median(
        a / b for a, b in zip(times["sequential"], times["together"], strict=True)
    )
    return {**per_step, "speedup": ratio}


def bench_configuration(task: SearchTask, k: int, repeats: int) -> dict:
    losses = candidates(k)
    scores = {}

    def run(parallel: int):
        def timed() -> float:
            start = time.perf_counter()
            results = evaluate_candidates(task, losses, parallel_candidates=parallel)
            seconds = time.perf_counter() - start
            scores[parallel] = [r.score for r in results]
            return seconds

        return timed

    timers = {"one after another": run(1), "together": run(k)}
    for timer in timers.values():
        timer()  # warm-up: data, TensorFlow start-up
    times = _interleaved(timers, repeats, 1)
    sequential, together = times["one after another"], times["together"]
    speedup = statistics.median(a / b for a, b in zip(sequential, together, strict=True))
    difference = max(abs(a - b) for a, b in zip(scores[1], scores[k], strict=True))
    return {
        "sequential": statistics.median(sequential),
        "together": statistics.median(together),
        "speedup": speedup,
        "difference": difference,
    }


@click.command()
@click.option("--repeats", default=3, show_default=True, help="Interleaved timed repeats.")
@click.option("--candidates", "k", default=8, show_default=True, help="K, the population size.")
@click.option(
    "--tasks",
    default="mnist1d/mlp,mnist1d/cnn1d,digits/cnn",
    show_default=True,
    help="Comma-separated dataset/model pairs.",
)
@click.option("--epochs", default=30, show_default=True, help="The partial-training budget.")
@click.option("--subset-fraction", default=0.25, show_default=True)
@click.option("--jit", "jit_modes", default="off,on", show_default=True, help="XLA: off, on.")
@click.option("--steps", default=100, show_default=True, help="Steps per repeat, step table.")
@click.option(
    "--tables",
    default="throughput,steps",
    show_default=True,
    help="Which tables: throughput (whole candidate evaluations), steps (one compiled step).",
)
@click.option("--quick", is_flag=True, help="1 repeat of 2 epochs, K = 3: a smoke check.")
def main(repeats, k, tasks, epochs, subset_fraction, jit_modes, steps, tables, quick):
    """Times K candidates trained together against one after another."""
    if quick:
        repeats, epochs, k, steps = 1, 2, 3, 5
    print("command: python " + shlex.join(sys.argv))
    print(
        f"python {platform.python_version()}, TensorFlow {tf.__version__}, Keras "
        f"{keras.__version__}, metaloss {metaloss.__version__}, {os.cpu_count()} CPUs"
    )
    print(
        f"{subset_fraction:g} of each training split, K = {k} TaylorGLO candidates, "
        f"{epochs} epochs each, batch 128, SGD 0.1 momentum 0.9, {repeats} repeats"
    )
    tables = tables.split(",")
    configurations = []
    for pair in tasks.split(","):
        dataset, model = pair.split("/", 1)
        for mode in jit_modes.split(","):
            task = SearchTask(
                dataset,
                model,
                epochs=epochs,
                subset_fraction=subset_fraction,
                jit_compile=mode == "on",
            )
            configurations.append((dataset, model, mode, task))
    if "throughput" in tables:
        throughput_table(configurations, k, repeats)
    if "steps" in tables:
        steps_table(configurations, k, repeats, steps)


def throughput_table(configurations, k: int, repeats: int) -> None:
    print(
        "\n| dataset | model | XLA | one after another (s) | together (s) | candidates/s, one "
        "after another | candidates/s, together | speed-up | target | met | max fitness "
        "difference |"
        "\n|---|---|---|---:|---:|---:|---:|---:|---:|---|---:|"
    )
    for dataset, model, mode, task in configurations:
        row = bench_configuration(task, k, repeats)
        met = "yes" if row["speedup"] >= TARGET else "no"
        print(
            f"| {dataset} | {model} | {mode} | {row['sequential']:.2f} | "
            f"{row['together']:.2f} | "
            f"{k / row['sequential']:.2f} | {k / row['together']:.2f} | "
            f"{row['speedup']:.2f}x | >= {TARGET:.0f}x | {met} | {row['difference']:.4f} |",
            flush=True,
        )


def steps_table(configurations, k: int, repeats: int, steps: int) -> None:
    print(
        f"\nOne compiled step, {steps} steps per repeat: ms per candidate-step\n"
        "| dataset | model | XLA | K Trainer steps | one population step | speed-up |\n"
        "|---|---|---|---:|---:|---:|"
    )
    for dataset, model, mode, task in configurations:
        row = bench_steps(task, k, repeats, steps)
        print(
            f"| {dataset} | {model} | {mode} | {row['sequential']:.3f} | "
            f"{row['together']:.3f} | {row['speedup']:.2f}x |",
            flush=True,
        )


if __name__ == "__main__":
    main()
