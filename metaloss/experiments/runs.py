"""Training runs of an experiment: resumable ``train_experiment`` calls and a progress echo."""

from __future__ import annotations

import functools
from collections.abc import Mapping

__all__ = ["TRAINING_OPTIONS", "print_run", "run_printer", "training_run"]

# Experiment settings that are train_experiment arguments of the same name.
TRAINING_OPTIONS = (
    "epochs",
    "steps",
    "batch_size",
    "optimizer",
    "learning_rate",
    "momentum",
    "weight_decay",
    "schedule",
    "validation_split",
    "subset_fraction",
    "data_dir",
    "jit_compile",
    "verbose",
)


def training_run(p: Mapping, dataset: str, model: str, loss, **overrides):
    """A resumable :func:`~metaloss.training.train_experiment` run for ``run_seeds``.

    Takes from the experiment's settings ``p`` every one named like an argument of
    ``train_experiment`` (:data:`TRAINING_OPTIONS`), with ``resume=True`` so an interrupted run
    continues from its checkpoints; ``overrides`` win.

    Returns:
        A function of ``seed`` and ``output`` returning an ``ExperimentResult``.
    """
    from metaloss.training import train_experiment

    settings = {key: p[key] for key in TRAINING_OPTIONS if key in p}
    settings.update({"resume": True, **overrides})
    return functools.partial(train_experiment, dataset, model, loss, **settings)


def print_run(label: str, record, finished: bool) -> None:
    """Prints one line for a finished seed: its test accuracy, status and time."""
    origin = "finished earlier" if finished else f"{record.seconds:.1f} s"
    status = "" if record.status == "completed" else f" [{record.status}]"
    print(
        f"  {label:<24} seed {record.seed}: test accuracy {record.test_accuracy:.4f}"
        f"{status} ({origin})",
        flush=True,
    )


def run_printer(label: str):
    """An ``on_result`` callback for :func:`metaloss.training.run_seeds` that prints each run."""
    return functools.partial(print_run, label)
