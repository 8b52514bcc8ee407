"""Benchmark: full-batch training with one step per epoch against epochs of many steps.

Side by side in ONE process, reporting RATIOS. The dynamical-loss spiral trains by full-batch
gradient descent: every pass over the data is one optimizer step, so with one pass per epoch the
Trainer's per-epoch work (callbacks, history, the divergence check's device read) comes with
every step. ``train_experiment(steps_per_epoch=k)`` repeats the data so an epoch holds k steps.
Both variants train the spiral's Dense(width)-ReLU-Dense(3) with the cyclic loss and SGD(1.0)
from the same weights; each repeat times one ``Trainer.fit(steps=N)`` of every variant in turn
(ABAB..., order rotating), after a warm-up fit that traces the steps. Reported: median ms per
step and the median of the within-repeat ratios to the one-step-per-epoch baseline.

Run ``python tools/bench_full_batch.py --quick`` for a smoke check.
"""

from __future__ import annotations

import os
import platform
import shlex
import sys

import click

from metaloss._quiet import quiet_tensorflow

quiet_tensorflow()  # before the imports below load TensorFlow: its start-up lines stay hidden

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from bench_loss_overhead import _interleaved, _print_table, _rows, _timed  # noqa: E402

import metaloss  # noqa: E402
from metaloss import data as data_module  # noqa: E402
from metaloss import losses  # noqa: E402
from metaloss.data import epochs  # noqa: E402
from metaloss.training import Trainer  # noqa: E402
from metaloss.training.experiment import build_model  # noqa: E402

TARGET = 1.0  # epochs of many steps must not be slower


def _trainer(data, width: int) -> Trainer:
    keras.utils.set_random_seed(0)
    network = build_model(f"mlp:hidden=[{width}]", data)
    loss = losses.CyclicClassEmphasis(3, period=500, amplitude=70, from_logits=True)
    return Trainer(network, loss, keras.optimizers.SGD(1.0))


@click.command()
@click.option("--repeats", default=5, show_default=True, help="Interleaved timed repeats.")
@click.option("--steps", default=500, show_default=True, help="Steps per fit.")
@click.option("--width", default=100, show_default=True, help="Hidden units.")
@click.option(
    "--steps-per-epoch",
    "grouped",
    default="25,100",
    show_default=True,
    help="The grouped variants, comma-separated.",
)
@click.option("--quick", is_flag=True, help="2 repeats of 50 steps: a smoke check.")
def main(repeats, steps, width, grouped, quick):
    """Times full-batch Trainer.fit with one step per epoch against k steps per epoch."""
    if quick:
        repeats, steps = 2, 50
    print("command: python " + shlex.join(sys.argv))
    print(
        f"python {platform.python_version()}, TensorFlow {tf.__version__}, Keras "
        f"{keras.__version__}, metaloss {metaloss.__version__}, {os.cpu_count()} CPUs"
    )
    data = data_module.load("spiral", validation_split=0.0, batch_size=10_000)
    print(
        f"spiral ({data.num_examples['train']} points, one full batch), Dense({width}), cyclic "
        f"loss, SGD(1.0), {steps} steps per fit, {repeats} repeats"
    )
    variants = {"1 step per epoch": data.train}
    for k in (int(v) for v in grouped.split(",")):
        variants[f"{k} steps per epoch"] = epochs.steps_per_epoch(data.train_epoch, k)
    trainers = {name: _trainer(data, width) for name in variants}
    for name, trainer in trainers.items():
        trainer.fit(variants[name], steps=min(steps, 20), verbose=0)  # trace and warm up

    def fit(name):
        return _timed(lambda: trainers[name].fit(variants[name], steps=steps, verbose=0))

    times = _interleaved({name: fit(name) for name in variants}, repeats, 1)
    _print_table(
        f"Full-batch fit, {steps} steps: k steps per epoch / 1 step per epoch",
        _rows(times, "1 step per epoch", steps, TARGET),
    )


if __name__ == "__main__":
    main()
