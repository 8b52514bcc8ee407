"""Benchmark: one AdaLFL online step (base + meta update) against one plain training step.

Side by side in ONE process, reporting RATIOS (no absolute time is a criterion). For each model,
three fresh copies (same seed) on the same fixed batch of ``--dataset``:

- ``plain, cross-entropy``: ``Trainer._train_step`` with Keras's cross-entropy;
- ``plain, learned loss``: ``Trainer._train_step`` with a ``LearnedLoss`` (same network cost);
- ``ML3 step (loss frozen)``: ``ML3._train_step``, the training step after ML3's offline phase
  (should cost what the plain step with the learned loss costs);
- ``AdaLFL online step``: ``AdaLFL._train_step`` on the batch plus a meta batch: the base update
  with the learned loss, then the meta-gradient through that update (unrolled, second order) and
  the meta-optimizer's update;
- ``offline step, sgd`` and ``offline step, fresh_optimizer``: one step of the offline phase
  (reset θ, the inner step, the meta-gradient, φ's update) with the plain inner step
  ``θ' = θ - α∇M_φ`` (the default) and with one step of a fresh copy of the base optimizer.

Each compiled step is called ``WARMUP`` times first (tracing excluded); each repeat then times
blocks of ``STEPS_PER_ROUND`` calls of every variant in turn (ABAB..., order rotating), each block
ending by reading ``optimizer.iterations``. Reported: median ms per step and the median of the
within-repeat ratios to the plain step with the same learned loss (the same model, batch and
loss without the meta update); target: online / plain <= 3x. The ratio to the plain
cross-entropy step is printed too: the loss network alone costs about as much as a small MLP.

Run ``python tools/bench_online.py --quick`` for a smoke check.
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
from bench_loss_overhead import _interleaved, _paired_ratio, _print_table, _rows, _timed  # noqa: E402

import metaloss  # noqa: E402
import metaloss.data  # noqa: E402
import metaloss.models  # noqa: E402
from metaloss.losses import LearnedLoss  # noqa: E402
from metaloss.search import ML3, AdaLFL  # noqa: E402
from metaloss.training import Trainer  # noqa: E402

WARMUP = 5
STEPS_PER_ROUND = 20
TARGET = 3.0


def _model(data, name: str) -> keras.Model:
    keras.utils.set_random_seed(0)
    return metaloss.models.get(name, data.input_shape, data.num_classes)


def _optimizer() -> keras.optimizers.Optimizer:
    return keras.optimizers.SGD(0.05, momentum=0.9)


def bench_model(data, model_name: str, repeats: int, steps: int, jit: bool | None) -> list:
    batches = iter(data.train)
    batch, meta_batch = next(batches), next(batches)
    trainers = {
        "plain, cross-entropy": Trainer(
            _model(data, model_name), "cross_entropy", _optimizer(), jit_compile=jit
        ),
        "plain, learned loss": Trainer(
            _model(data, model_name),
            LearnedLoss(seed=0, from_logits=True),
            _optimizer(),
            jit_compile=jit,
        ),
        "ML3 step (loss frozen)": ML3(
            _model(data, model_name), optimizer=_optimizer(), seed=0, jit_compile=jit
        ),
        "AdaLFL online step": AdaLFL(
            _model(data, model_name), optimizer=_optimizer(), seed=0, jit_compile=jit
        ),
    }
    offline = {
        f"offline step, {kind}": AdaLFL(
            _model(data, model_name),
            optimizer=_optimizer(),
            offline_step=kind,
            seed=0,
            jit_compile=jit,
        )
        for kind in ("sgd", "fresh_optimizer")
    }
    # Each variant: its compiled step, its arguments, and a variable to read (waits for the work).
    variants = {
        name: (
            trainer._train_step,
            (batch, meta_batch) if name == "AdaLFL online step" else batch,
            trainer.optimizer.iterations,
        )
        for name, trainer in trainers.items()
    }
    for name, adalfl in offline.items():
        adalfl.initialize(data.train, steps=1, verbose=0)  # keeps the initial weights to reset to

        def offline_step(batch, meta_batch, adalfl=adalfl):  # the reset, then the step
            return adalfl._offline_step(batch, meta_batch, adalfl._offline_reset())

        variants[name] = (offline_step, (batch, meta_batch), adalfl._offline_steps)

    def run(name: str, count: int = STEPS_PER_ROUND) -> None:
        step, arguments, counter = variants[name]
        for _ in range(count):
            step(*arguments)
        counter.numpy()  # waits for any queued work

    timers = {}
    for name in variants:
        run(name, WARMUP)
        timers[name] = _timed(lambda name=name: run(name))
    rounds = max(1, steps // STEPS_PER_ROUND)
    times = _interleaved(timers, repeats, rounds)
    rows = _rows(times, "plain, learned loss", rounds * STEPS_PER_ROUND, TARGET)
    cross_entropy = next(row for row in rows if row[0] == "plain, cross-entropy")
    rows = [row for row in rows if row is not cross_entropy]
    return (
        rows,
        cross_entropy[1],
        _paired_ratio(times, "AdaLFL online step", "plain, cross-entropy"),
    )


@click.command()
@click.option("--repeats", default=7, show_default=True, help="Interleaved timed repeats.")
@click.option(
    "--model",
    "models",
    multiple=True,
    default=("mlp", "cnn1d"),
    show_default=True,
    help="Models to time (repeatable).",
)
@click.option("--dataset", default="mnist1d", show_default=True)
@click.option("--batch-size", default=128, show_default=True)
@click.option("--steps", default=200, show_default=True, help="Compiled steps per variant/repeat.")
@click.option("--jit-compile", is_flag=True, help="XLA-compile every variant's step.")
@click.option("--quick", is_flag=True, help="2 repeats of short blocks: a smoke check.")
def main(repeats, models, dataset, batch_size, steps, jit_compile, quick):
    """Times AdaLFL's online step against a plain training step."""
    if quick:
        repeats, steps = min(repeats, 2), STEPS_PER_ROUND
    jit = True if jit_compile else None
    print("command: python " + shlex.join(sys.argv))
    print(
        f"python {platform.python_version()}, TensorFlow {tf.__version__}, Keras "
        f"{keras.__version__}, metaloss {metaloss.__version__}, {os.cpu_count()} CPUs, "
        f"XLA: {bool(jit)}"
    )
    data = metaloss.data.load(dataset, batch_size=batch_size)
    for model_name in models:
        rows, cross_entropy_ms, versus_cross_entropy = bench_model(
            data, model_name, repeats, steps, jit
        )
        _print_table(
            f"{model_name} on {dataset}, batch {batch_size}, {steps} steps per variant and "
            f"repeat, {repeats} repeats",
            rows,
        )
        print(
            f"plain cross-entropy step: {cross_entropy_ms:.3f} ms; AdaLFL online step / plain "
            f"cross-entropy step: {versus_cross_entropy:.3f}x"
        )


if __name__ == "__main__":
    main()
