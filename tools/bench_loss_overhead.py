"""Benchmark: overhead of the zoo's losses, and of `Trainer.fit` against Keras's `model.fit`.

Both tables compare variants side by side in ONE process and report RATIOS, so that a shared or
noisy machine slows every variant alike; no absolute time is ever a pass/fail criterion.

1. Per-loss compiled-step cost. For each zoo loss and for Keras's
   ``CategoricalCrossentropy(from_logits=True)``, a fresh model of the same architecture (same
   seed) gets its own ``Trainer`` (SGD 0.1, momentum 0.9). Each compiled step
   ``trainer._train_step(x, y)`` is first called ``WARMUP`` times on one fixed batch (tracing
   excluded), then every repeat times a block of ``--steps`` calls per variant, the variants
   interleaved (the order rotates from repeat to repeat); each block ends by reading
   ``optimizer.iterations`` so that queued work is finished. Reported: the median time per step
   of each variant and the median over repeats of the within-repeat ratio loss / CE.
2. ``Trainer.fit`` against ``model.fit``: fresh identical models, the same cross-entropy and
   optimizer settings, ``verbose=0``, ``steps_per_execution=1`` and no XLA for ``fit`` (the
   Trainer's default, and Keras's own "auto" on a CPU). After one warm-up epoch each, every
   repeat times ``--epochs-per-block`` one-epoch calls of each, interleaved; reported per step.

Run ``python tools/bench_loss_overhead.py --quick`` for a smoke check.
"""

from __future__ import annotations

import os
import platform
import shlex
import statistics
import sys
import time

import click
import keras
import tensorflow as tf

import metaloss
import metaloss.data
import metaloss.losses
import metaloss.models
from metaloss.training.trainer import Trainer

WARMUP = 10
STEP_TARGET, FIT_TARGET = 1.05, 1.0


def _optimizer() -> keras.optimizers.Optimizer:
    return keras.optimizers.SGD(0.1, momentum=0.9)


def _model(data, name: str) -> keras.Model:
    keras.utils.set_random_seed(0)  # identical initial weights for every variant
    stats = (data.channel_mean, data.channel_std)
    return metaloss.models.get(name, data.input_shape, data.num_classes, normalization=stats)


def _ce() -> keras.losses.Loss:
    return keras.losses.CategoricalCrossentropy(from_logits=True)


def _zoo_losses(num_classes: int) -> dict[str, keras.losses.Loss]:
    get = metaloss.losses.get
    return {
        "baikal": get("baikal", from_logits=True),
        "taylor_glo_reference": get("taylor_glo_reference", from_logits=True),
        "cyclic_class_emphasis": get(
            "cyclic_class_emphasis",
            from_logits=True,
            num_classes=num_classes,
            period=100,
            amplitude=5.0,
        ),
    }


def _interleaved(timers: dict, repeats: int) -> dict[str, list[float]]:
    """Runs each timer once per repeat, rotating the order; returns each one's timings."""
    names, times = list(timers), {name: [] for name in timers}
    for repeat in range(repeats):
        shift = repeat % len(names)
        for name in names[shift:] + names[:shift]:
            times[name].append(timers[name]())
    return times


def _paired_ratio(times: dict, name: str, base: str) -> float:
    return statistics.median(a / b for a, b in zip(times[name], times[base], strict=True))


def _step_timer(trainer: Trainer, x, y, steps: int):
    def run() -> float:
        start = time.perf_counter()
        for _ in range(steps):
            trainer._train_step(x, y)
        trainer.optimizer.iterations.numpy()  # waits for the queued steps
        return (time.perf_counter() - start) / steps

    return run


def bench_steps(data, model_name: str, repeats: int, steps: int) -> list[tuple]:
    x, y = next(iter(data.train))
    losses = {"keras CategoricalCrossentropy": _ce(), **_zoo_losses(data.num_classes)}
    timers = {}
    for name, loss in losses.items():
        trainer = Trainer(_model(data, model_name), loss, _optimizer())
        for _ in range(WARMUP):
            trainer._train_step(x, y)
        trainer.optimizer.iterations.numpy()
        timers[name] = _step_timer(trainer, x, y, steps)
    times = _interleaved(timers, repeats)
    base = next(iter(losses))
    rows = [(base, 1e3 * statistics.median(times[base]), None, None)]
    for name in list(losses)[1:]:
        ratio = _paired_ratio(times, name, base)
        rows.append((name, 1e3 * statistics.median(times[name]), ratio, STEP_TARGET))
    return rows


def bench_fit(data, model_name: str, repeats: int, epochs_per_block: int) -> list[tuple]:
    trainer = Trainer(_model(data, model_name), _ce(), _optimizer())
    model = _model(data, model_name)
    model.compile(
        optimizer=_optimizer(),
        loss=_ce(),
        metrics=["accuracy"],
        steps_per_execution=1,
        jit_compile=False,
    )
    steps = int(data.train.cardinality().numpy())
    fits = {
        "metaloss Trainer.fit": lambda: trainer.fit(data.train, epochs=1, verbose=0),
        "keras model.fit": lambda: model.fit(data.train, epochs=1, verbose=0, shuffle=False),
    }

    def timer(fit):
        def run() -> float:
            start = time.perf_counter()
            for _ in range(epochs_per_block):
                fit()
            return (time.perf_counter() - start) / (epochs_per_block * steps)

        return run

    for fit in fits.values():
        fit()  # warm-up epoch: traces the steps (full and last, partial batch)
    times = _interleaved({name: timer(fit) for name, fit in fits.items()}, repeats)
    trainer_name, fit_name = fits
    return [
        (fit_name, 1e3 * statistics.median(times[fit_name]), None, None),
        (
            trainer_name,
            1e3 * statistics.median(times[trainer_name]),
            _paired_ratio(times, trainer_name, fit_name),
            FIT_TARGET,
        ),
    ]


def _print_table(title: str, base: str, rows: list[tuple]) -> None:
    print(f"\n{title}")
    print(f"| variant | median ms/step | ratio vs {base} | target | met |")
    print("|---|---:|---:|---:|---|")
    for name, ms, ratio, target in rows:
        if ratio is None:
            print(f"| {name} | {ms:.3f} | 1.00 (baseline) | | |")
        else:
            met = "yes" if ratio <= target else "no"
            print(f"| {name} | {ms:.3f} | {ratio:.3f}x | <= {target:.2f}x | {met} |")


@click.command()
@click.option("--repeats", default=7, show_default=True, help="Interleaved timed repeats.")
@click.option("--model", "model_name", default="mlp", show_default=True)
@click.option("--dataset", default="mnist1d", show_default=True)
@click.option("--batch-size", default=128, show_default=True)
@click.option("--steps", default=200, show_default=True, help="Compiled steps per timed block.")
@click.option("--epochs-per-block", default=5, show_default=True, help="Epochs per fit block.")
@click.option("--quick", is_flag=True, help="3 repeats of short blocks: a smoke check.")
def main(repeats, model_name, dataset, batch_size, steps, epochs_per_block, quick):
    """Times the zoo's losses against cross-entropy, and Trainer.fit against model.fit."""
    if quick:
        repeats, steps, epochs_per_block = min(repeats, 3), min(steps, 20), 1
    print("command: python " + shlex.join(sys.argv))
    print(
        f"python {platform.python_version()}, TensorFlow {tf.__version__}, Keras "
        f"{keras.__version__}, metaloss {metaloss.__version__}, {os.cpu_count()} CPUs, "
        f"GPUs: {len(tf.config.list_physical_devices('GPU'))}"
    )
    data = metaloss.data.load(dataset, batch_size=batch_size)
    print(
        f"{dataset} ({data.num_examples['train']} training examples), {model_name}, "
        f"batch {batch_size}, {repeats} repeats"
    )
    base = "keras CategoricalCrossentropy"
    rows = bench_steps(data, model_name, repeats, steps)
    _print_table(f"1. Compiled train step, {steps} steps per block", base, rows)
    rows = bench_fit(data, model_name, repeats, epochs_per_block)
    _print_table(f"2. One epoch, {epochs_per_block} epochs per block", "model.fit", rows)


if __name__ == "__main__":
    main()
