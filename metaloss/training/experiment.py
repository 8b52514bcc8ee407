"""One training experiment end to end: data, model, loss, optimizer, training, evaluation, files."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import keras

from metaloss import data as data_module
from metaloss import losses
from metaloss import models as model_module
from metaloss.data import epochs as epochs_module
from metaloss.losses._spec import parse_spec
from metaloss.training.schedules import learning_rate_schedule, make_optimizer
from metaloss.training.trainer import Trainer

__all__ = [
    "ExperimentResult",
    "build_model",
    "build_optimizer",
    "setup_experiment",
    "train_experiment",
]

MODEL_FILE = "model.keras"
HISTORY_FILE = "history.json"
RESULTS_FILE = "results.json"
LOSS_FILE = "loss.json"


@dataclass
class ExperimentResult:
    """Outcome of :func:`train_experiment` (also written as ``results.json``)."""

    dataset: str
    model: str
    loss: str
    seed: int
    epochs: int
    steps: int
    status: str
    message: str
    train_accuracy: float
    val_accuracy: float | None
    test_accuracy: float
    test_loss: float
    seconds: float
    history: dict[str, list[float]] = field(default_factory=dict)
    output: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def load(cls, path: str | Path) -> ExperimentResult:
        """The record a finished run wrote: ``path`` is its ``results.json`` or directory."""
        path = Path(path)
        if path.is_dir():
            path = path / RESULTS_FILE
        return cls(**json.loads(path.read_text()))

    @classmethod
    def from_run(
        cls, *, dataset, model, loss, seed, fit, test, seconds, output, history=None
    ) -> ExperimentResult:
        """The record of a finished run: its ``fit`` result, ``test`` metrics and history.

        ``history`` defaults to ``fit.history``; ``output`` is the directory written, or `None`.
        """
        history = fit.history if history is None else history
        return cls(
            dataset=dataset,
            model=model,
            loss=loss,
            seed=seed,
            epochs=fit.epochs,
            steps=fit.steps,
            status=fit.status,
            message=fit.message,
            train_accuracy=history.get("accuracy", [float("nan")])[-1],
            val_accuracy=history["val_accuracy"][-1] if "val_accuracy" in history else None,
            test_accuracy=test["accuracy"],
            test_loss=test["loss"],
            seconds=seconds,
            history=history,
            output=str(output) if output is not None else None,
        )


def _steps_per_epoch(train) -> int:
    cardinality = int(train.cardinality().numpy())
    return max(cardinality, 1)


def build_model(model: str, data: data_module.Dataset) -> keras.Model:
    """The network named by ``model`` (``"name"`` or ``"name:k=v,..."``) for ``data``.

    The model starts with a ``Normalization`` layer holding the training split's statistics.
    """
    model_name, model_kwargs = parse_spec(model)
    return model_module.get(
        model_name,
        data.input_shape,
        data.num_classes,
        normalization=(data.channel_mean, data.channel_std),
        **model_kwargs,
    )


def setup_experiment(
    dataset: str,
    model: str,
    *,
    seed: int,
    batch_size: int,
    validation_split: float,
    subset_fraction: float,
    data_dir: str | None,
) -> tuple[data_module.Dataset, keras.Model]:
    """Seeds everything, loads ``dataset`` and builds ``model`` for it.

    Two experiments set up with the same arguments see the same data in the same order and
    start from the same weights, whatever they train with afterwards.
    """
    # First of all: tf.data combines its op seeds with the global seed at creation time.
    keras.utils.set_random_seed(seed)
    data = data_module.load(
        dataset,
        validation_split=validation_split,
        subset_fraction=subset_fraction,
        seed=seed,
        data_dir=data_dir,
        batch_size=batch_size,
    )
    return data, build_model(model, data)


def build_optimizer(
    data: data_module.Dataset,
    optimizer: str = "sgd",
    learning_rate: float | None = None,
    *,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    schedule: str = "constant",
) -> keras.optimizers.Optimizer:
    """SGD or Adam following a named paper schedule, its milestones in ``data``'s epochs.

    ``learning_rate=None`` takes the schedule's own (0.1 for "constant" SGD) or 1e-3 for Adam.
    """
    if learning_rate is None and optimizer == "adam":
        learning_rate = 1e-3
    rate = learning_rate_schedule(
        schedule, steps_per_epoch=_steps_per_epoch(data.train), base_learning_rate=learning_rate
    )
    return make_optimizer(optimizer, rate, momentum=momentum, weight_decay=weight_decay)


def train_experiment(
    dataset: str = "mnist1d",
    model: str = "mlp",
    loss="cross_entropy",
    *,
    epochs: int | None = 20,
    steps: int | None = None,
    steps_per_epoch: int | None = None,
    seed: int = 0,
    output: str | Path | None = None,
    batch_size: int = 128,
    optimizer: str = "sgd",
    learning_rate: float | None = None,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    schedule: str = "constant",
    validation_split: float = 0.1,
    subset_fraction: float = 1.0,
    data_dir: str | None = None,
    jit_compile: bool | None = None,
    resume: bool = False,
    callbacks=None,
    verbose: str | int = "auto",
) -> ExperimentResult:
    """Trains ``model`` on ``dataset`` with ``loss`` and evaluates it on the test split.

    With ``output`` it writes ``model.keras`` (compiled with the loss, so it reloads with it),
    ``loss.json`` (the loss alone, for ``metaloss train --loss``), ``history.json``,
    ``results.json`` and, with ``resume``, keeps per-epoch checkpoints under
    ``output/checkpoints`` so an interrupted run continues where it stopped.

    Args:
        dataset: a :func:`metaloss.data.load` name. Defaults to `"mnist1d"`.
        model: a :func:`metaloss.models.get` name, optionally with arguments,
            e.g. ``"wrn:depth=16,width=8"``. Defaults to `"mlp"`.
        loss: anything :func:`metaloss.losses.get` accepts; names get ``from_logits=True``.
            Defaults to `"cross_entropy"`.
        epochs: training epochs. Defaults to `20`.
        steps: at most this many optimizer steps; with ``epochs=None`` the budget is steps
            alone (the papers' MNIST budgets are in steps). Defaults to `None`.
        steps_per_epoch: batches per epoch, the training data repeating (reshuffled) as needed,
            as Keras's ``fit(steps_per_epoch=...)`` (see
            :func:`metaloss.data.epochs.steps_per_epoch`). History, validation and checkpoints come
            once per epoch, so full-batch training (one batch per pass) runs several times
            faster with, say, 50. Defaults to `None` (one pass over the data).
        seed: seeds weights, data split, shuffling and augmentation. Defaults to `0`.
        output: directory for the files above. Defaults to `None` (write nothing).
        batch_size: Defaults to `128`.
        optimizer: "sgd" or "adam". Defaults to `"sgd"`.
        learning_rate: initial rate; `None` takes the schedule's (0.1 for "constant" SGD,
            0.001 for Adam). Defaults to `None`.
        momentum: SGD momentum. Defaults to `0.9`.
        weight_decay: decoupled weight decay. Defaults to `0.0`.
        schedule: a :data:`metaloss.training.PAPER_SCHEDULES` name. Defaults to `"constant"`.
        validation_split: fraction of training data held out. Defaults to `0.1`.
        subset_fraction: fraction of the remaining training data used. Defaults to `1.0`.
        data_dir: where archives of downloadable datasets are. Defaults to `None`.
        jit_compile: XLA-compile the steps. Defaults to `None`.
        resume: continue from ``output/checkpoints`` if present; the resumed run ends with the
            weights the uninterrupted one would have (data order and random draws are functions
            of ``(seed, epoch)``). Defaults to `False`.
        callbacks: Keras callbacks for :meth:`Trainer.fit` (for example a
            :class:`~metaloss.analysis.HessianTracker`). Defaults to `None`.
        verbose: progress display, as :meth:`Trainer.fit`. Defaults to `"auto"`.

    Returns:
        An :class:`ExperimentResult`.
    """
    if steps_per_epoch is not None and (
        isinstance(steps_per_epoch, bool)
        or not isinstance(steps_per_epoch, int)
        or steps_per_epoch < 1
    ):
        raise ValueError(
            "Invalid value for argument `steps_per_epoch`. Expected a positive integer or None. "
            f"Received: steps_per_epoch={steps_per_epoch!r}"
        )
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
    loss_object = losses.get(loss, from_logits=True)
    trainer = Trainer(
        network,
        loss_object,
        build_optimizer(
            data,
            optimizer,
            learning_rate,
            momentum=momentum,
            weight_decay=weight_decay,
            schedule=schedule,
        ),
        jit_compile=jit_compile,
    )
    output = Path(output) if output is not None else None
    checkpoints = output / "checkpoints" if (output is not None and resume) else None
    train = (
        data.train_epoch
        if steps_per_epoch is None
        else epochs_module.steps_per_epoch(data.train_epoch, steps_per_epoch)
    )
    fit = trainer.fit(
        train,
        epochs=epochs,
        steps=steps,
        validation=data.validation,
        checkpoint_dir=checkpoints,
        callbacks=callbacks,
        verbose=verbose,
    )
    test = trainer.evaluate(data.test)
    result = ExperimentResult.from_run(
        dataset=dataset,
        model=model,
        loss=loss if isinstance(loss, str) else type(loss_object).__name__,
        seed=seed,
        fit=fit,
        test=test,
        seconds=time.perf_counter() - start,
        output=output,
    )
    if output is not None:
        # results.json goes last: its presence marks a finished run (see run_seeds).
        output.mkdir(parents=True, exist_ok=True)
        losses.save(loss_object, output / LOSS_FILE)
        _write_outputs(output, network, result)
    return result


def _write_outputs(output: Path, network: keras.Model, result: ExperimentResult) -> None:
    """Writes the model and JSON files, each through a temporary name so none is half-written.

    ``results.json`` is written last, so its presence means the run finished.
    """
    output.mkdir(parents=True, exist_ok=True)
    partial_model = output / ("partial." + MODEL_FILE)
    network.save(partial_model)
    partial_model.replace(output / MODEL_FILE)
    for name, payload in ((HISTORY_FILE, result.history), (RESULTS_FILE, result.to_dict())):
        partial = output / (name + ".partial")
        partial.write_text(json.dumps(payload, indent=2) + "\n")
        partial.replace(output / name)
