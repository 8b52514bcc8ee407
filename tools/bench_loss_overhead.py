"""Benchmark: overhead of the zoo's losses, and of `Trainer.fit` against Keras's `model.fit`.

Both tables compare variants side by side in ONE process and report RATIOS, so that a shared or
noisy machine slows every variant alike; no absolute time is ever a pass/fail criterion.

1. Per-loss compiled-step cost. For each zoo loss and for Keras's
   ``CategoricalCrossentropy(from_logits=True)``, a fresh model of the same architecture (same
   seed) gets its own ``Trainer`` (SGD 0.1, momentum 0.9). Each compiled step
   ``trainer._train_step(x, y)`` is first called ``WARMUP`` times on one fixed batch (tracing
   excluded). Each repeat then runs ``--steps / STEPS_PER_ROUND`` rounds; a round times a block
   of ``STEPS_PER_ROUND`` calls of every variant in turn (ABAB..., the order rotating), each
   block ending by reading ``optimizer.iterations`` so that no queued work escapes the clock.
2. ``Trainer.fit`` against ``model.fit``, one epoch of the same training pipeline: fresh
   identical models, the same cross-entropy, SGD settings and accuracy metric, ``verbose=0``;
   ``fit`` with ``steps_per_execution=1`` and the same XLA setting as the Trainer (off by
   default, which is also Keras's "auto" on a CPU). After one warm-up epoch each (tracing of
   the full and the last, partial batch), each repeat runs ``--epochs`` rounds of one ``fit``
   call per variant, interleaved as above.

Reported: each variant's median (over repeats) time per step, and the median over repeats of
the within-repeat ratio variant / baseline, which cancels drifts of the machine's speed.
``--jit-compile`` XLA-compiles every variant.

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

from metaloss._quiet import quiet_tensorflow

quiet_tensorflow()  # before the imports below load TensorFlow: its start-up lines stay hidden

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

import metaloss  # noqa: E402
import metaloss.data  # noqa: E402
import metaloss.losses  # noqa: E402
import metaloss.models  # noqa: E402
from metaloss.training.trainer import Trainer  # noqa: E402

WARMUP = 10  # untimed calls of each compiled step (tracing and first runs)
STEPS_PER_ROUND = 20
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


def _interleaved(timers: dict, repeats: int, rounds: int) -> dict[str, list[float]]:
    """Per repeat, ``rounds`` rounds of one call of every timer (ABAB...); the order rotates.

    Returns, for each timer, the total time of its calls in each repeat.
    """
    names, times = list(timers), {name: [] for name in timers}
    for repeat in range(repeats):
        total = dict.fromkeys(names, 0.0)
        for turn in range(rounds):
            shift = (repeat + turn) % len(names)
            for name in names[shift:] + names[:shift]:
                total[name] += timers[name]()
        for name in names:
            times[name].append(total[name])
    return times


def _timed(fn):
    def run() -> float:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    return run


def _paired_ratio(times: dict, name: str, base: str) -> float:
    return statistics.median(a / b for a, b in zip(times[name], times[base], strict=True))


def _rows(times: dict, base: str, units: int, target: float) -> list[tuple]:
    """(name, median ms per step, ratio to ``base``, target) per variant, ``base`` first."""
    rows = []
    for name in [base, *(n for n in times if n != base)]:
        ratio = None if name == base else _paired_ratio(times, name, base)
        rows.append((name, 1e3 * statistics.median(times[name]) / units, ratio, target))
    return rows


def bench_steps(data, model_name: str, repeats: int, steps: int, jit: bool | None) -> list:
    x, y = next(iter(data.train))
    losses = {"keras CategoricalCrossentropy": _ce(), **_zoo_losses(data.num_classes)}

    def run(trainer: Trainer, count: int = STEPS_PER_ROUND) -> None:
        for _ in range(count):
            trainer._train_step(x, y)
        trainer.optimizer.iterations.numpy()  # waits for any queued work

    timers = {}
    for name, loss in losses.items():
        trainer = Trainer(_model(data, model_name), loss, _optimizer(), jit_compile=jit)
        run(trainer, WARMUP)
        timers[name] = _timed(lambda trainer=trainer: run(trainer))
    rounds = max(1, steps // STEPS_PER_ROUND)
    times = _interleaved(timers, repeats, rounds)
    return _rows(times, next(iter(losses)), rounds * STEPS_PER_ROUND, STEP_TARGET)


def bench_fit(data, model_name: str, repeats: int, epochs: int, jit: bool | None) -> list:
    trainer = Trainer(_model(data, model_name), _ce(), _optimizer(), jit_compile=jit)
    model = _model(data, model_name)
    model.compile(
        optimizer=_optimizer(),
        loss=_ce(),
        metrics=["accuracy"],
        steps_per_execution=1,
        jit_compile=bool(jit),
    )
    fits = {
        "keras model.fit": lambda: model.fit(data.train, epochs=1, verbose=0, shuffle=False),
        "metaloss Trainer.fit": lambda: trainer.fit(data.train, epochs=1, verbose=0),
    }

    for fit in fits.values():
        fit()  # warm-up epoch: traces the steps (full and last, partial batch)
    times = _interleaved({name: _timed(fit) for name, fit in fits.items()}, repeats, epochs)
    steps = epochs * int(data.train.cardinality().numpy())
    return _rows(times, "keras model.fit", steps, FIT_TARGET)


def _print_table(title: str, rows: list[tuple]) -> None:
    print(
        f"\n{title}\n| variant | median ms/step | ratio | target | met |\n|---|---:|---:|---:|---|"
    )
    for name, ms, ratio, target in rows:
        if ratio is None:
            print(f"| {name} | {ms:.3f} | 1 (baseline) | | |")
        else:
            met = "yes" if ratio <= target else "no"
            print(f"| {name} | {ms:.3f} | {ratio:.3f}x | <= {target:.2f}x | {met} |")


@click.command()
@click.option("--repeats", default=7, show_default=True, help="Interleaved timed repeats.")
@click.option("--model", "model_name", default="mlp", show_default=True)
@click.option("--dataset", default="mnist1d", show_default=True)
@click.option("--batch-size", default=128, show_default=True)
@click.option("--steps", default=200, show_default=True, help="Compiled steps per variant/repeat.")
@click.option("--epochs", default=10, show_default=True, help="One-epoch fits per variant/repeat.")
@click.option("--jit-compile", is_flag=True, help="XLA-compile every variant's step.")
@click.option("--quick", is_flag=True, help="3 repeats of short blocks: a smoke check.")
def main(repeats, model_name, dataset, batch_size, steps, epochs, jit_compile, quick):
    """Times the zoo's losses against cross-entropy, and Trainer.fit against model.fit."""
    if quick:
        repeats, steps, epochs = min(repeats, 3), STEPS_PER_ROUND * 2, 1
    jit = True if jit_compile else None  # None: TensorFlow's default (no XLA)
    print("command: python " + shlex.join(sys.argv))
    print(
        f"python {platform.python_version()}, TensorFlow {tf.__version__}, Keras "
        f"{keras.__version__}, metaloss {metaloss.__version__}, {os.cpu_count()} CPUs, "
        f"{len(tf.config.list_physical_devices('GPU'))} GPUs, XLA: {bool(jit)}"
    )
    data = metaloss.data.load(dataset, batch_size=batch_size)
    print(
        f"{dataset} ({data.num_examples['train']} training examples), {model_name}, "
        f"batch {batch_size}, {repeats} repeats (medians; ratios: medians of per-repeat ratios)"
    )
    rows = bench_steps(data, model_name, repeats, steps, jit)
    _print_table(f"1. Compiled train step, loss / CE, {steps} steps per variant and repeat", rows)
    rows = bench_fit(data, model_name, repeats, epochs, jit)
    _print_table(f"2. One epoch, Trainer.fit / model.fit, {epochs} per variant and repeat", rows)


if __name__ == "__main__":
    main()
