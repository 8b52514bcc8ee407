"""One AdaLFL (or ML3) run end to end, like :func:`metaloss.training.train_experiment`."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import keras

from metaloss import losses
from metaloss.losses import LearnedLoss
from metaloss.losses._base import invalid_value
from metaloss.search.ml3 import ML3
from metaloss.search.online import (
    DEFAULT_INIT_STEPS,
    DEFAULT_INNER_LR,
    METHODS,
    AdaLFL,
    OnlineResult,
)
from metaloss.training.experiment import (
    ExperimentResult,
    _write_outputs,
    build_optimizer,
    setup_experiment,
)

__all__ = ["LEARNED_LOSS_FILE", "SNAPSHOTS_FILE", "OnlineExperiment", "online_experiment"]

LEARNED_LOSS_FILE = "learned_loss.json"
SNAPSHOTS_FILE = "snapshots.json"


@dataclass
class OnlineExperiment:
    """What :func:`online_experiment` did: the usual experiment record and the AdaLFL/ML3 run."""

    experiment: ExperimentResult
    online: OnlineResult


def online_experiment(
    dataset: str = "mnist1d",
    model: str = "mlp",
    *,
    epochs: int = 10,
    init_steps: int = DEFAULT_INIT_STEPS,
    seed: int = 0,
    output: str | Path | None = None,
    batch_size: int = 128,
    optimizer: str = "adam",
    learning_rate: float | None = None,
    momentum: float = 0.0,
    weight_decay: float = 0.0,
    meta_learning_rate: float = 1e-3,
    inner_lr: float = DEFAULT_INNER_LR,
    offline_step: str = "sgd",
    validation_split: float = 0.1,
    subset_fraction: float = 1.0,
    data_dir: str | None = None,
    jit_compile: bool | None = None,
    resume: bool = False,
    verbose: str | int = "auto",
    method: str = "adalfl",
) -> OnlineExperiment:
    """Trains ``model`` on ``dataset`` with AdaLFL (or ML3) and evaluates it on the test split.

    Data, model and optimizer are built exactly as :func:`metaloss.training.train_experiment`
    builds them for the same arguments and seed, so a cross-entropy run with that function
    starts from the same weights and sees the same data. The learned loss is a fresh
    :class:`~metaloss.losses.LearnedLoss` seeded with ``seed``; the meta-optimizer is Adam.

    With ``output`` it writes ``model.keras`` (compiled with the learned loss, whose config holds
    its weights), ``learned_loss.json`` (for ``metaloss train --loss``), ``snapshots.json`` (the
    learned loss at step 0 and every epoch's end), ``history.json`` (with ``meta_loss``, and
    ``init_meta_loss`` for the offline phase) and ``results.json``.

    Args:
        dataset, model, epochs, seed, output, batch_size, learning_rate, weight_decay,
            validation_split, subset_fraction, data_dir, jit_compile, verbose: as in
            :func:`metaloss.training.train_experiment` (constant learning rate).
        optimizer: "adam" or "sgd". Defaults to `"adam"`.
        momentum: SGD momentum. Defaults to `0.0`: with heavy-ball momentum 0.9 the one-step
            meta-gradient keeps steepening the learned loss (a larger effective step looks
            better one step ahead) until training degrades.
        init_steps: steps of the offline initialisation, 0 to skip it. Defaults to `2500`
            (the paper's).
        meta_learning_rate: Adam's rate for the loss network. Defaults to `1e-3` (the paper's).
        inner_lr, offline_step: the offline phase's inner step, as in
            :class:`~metaloss.search.AdaLFL`. Defaults to `0.01` and `"sgd"`.
        resume: keep checkpoints under ``output/checkpoints`` (the base model and optimizer,
            φ, the meta-optimizer, the snapshots and the offline phase's result) and continue
            from them if present: the resumed run ends where the uninterrupted one would.
            Defaults to `False`.
        method: `"adalfl"` (the loss learned online after the offline phase) or `"ml3"` (the
            offline phase only, then the loss frozen; its snapshots are all the same network).
            The result's ``loss`` is the method's name. Defaults to `"adalfl"`.

    Returns:
        An :class:`OnlineExperiment`.
    """
    if method not in METHODS:
        raise invalid_value("method", f"one of {list(METHODS)}", method)
    start = time.perf_counter()
    data, network = setup_experiment(
        dataset,
        model,
        seed=seed,
        batch_size=batch_size,
        validation_split=validation_split,
        subset_fraction=subset_fraction,
        data_dir=data_dir,
    )
    base_optimizer = build_optimizer(
        data, optimizer, learning_rate, momentum=momentum, weight_decay=weight_decay
    )
    learner = AdaLFL if method == "adalfl" else ML3
    trainer = learner(
        network,
        LearnedLoss(seed=seed, from_logits=True),
        base_optimizer,
        meta_optimizer=keras.optimizers.Adam(meta_learning_rate),
        inner_lr=inner_lr,
        offline_step=offline_step,
        seed=seed,
        jit_compile=jit_compile,
    )
    checkpoints = Path(output) / "checkpoints" if (output is not None and resume) else None
    run = trainer.run(
        data.train_epoch,
        init_steps=init_steps,
        epochs=epochs,
        validation=data.validation,
        checkpoint_dir=checkpoints,
        verbose=verbose,
    )
    test = trainer.evaluate(data.test)
    history = dict(run.history)
    if run.initialization is not None:
        history["init_meta_loss"] = run.initialization.history["meta_loss"]
    experiment = ExperimentResult.from_run(
        dataset=dataset,
        model=model,
        loss=method,
        seed=seed,
        fit=run,
        test=test,
        seconds=time.perf_counter() - start,
        output=output,
        history=history,
    )
    if output is not None:
        output = Path(output)
        output.mkdir(parents=True, exist_ok=True)
        losses.save(run.loss, output / LEARNED_LOSS_FILE)
        partial = output / (SNAPSHOTS_FILE + ".partial")
        partial.write_text(json.dumps([s.to_dict() for s in run.snapshots]) + "\n")
        partial.replace(output / SNAPSHOTS_FILE)
        _write_outputs(output, network, experiment)  # results.json last: the run is complete
    return OnlineExperiment(experiment, run)
