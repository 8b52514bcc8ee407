"""Candidate evaluation: partial training of a batch of candidate losses on one task.

Every candidate of a search is scored by :func:`evaluate_candidates`, which takes a *batch* of
losses, so that a generation can be trained at once (``parallel_candidates``: the
candidates become the replicas of one :class:`~metaloss.training.PopulationTrainer`). Each
candidate trains from the same initial weights on the same data order (common random
numbers: fitness differences come from the losses, not from the draw), and its fitness is the
validation accuracy after the partial budget.

One partial run is a noisy measurement: on a small validation set its standard error
(√(a(1−a)/n_val), about 0.024 for 400 examples) exceeds the differences between good
candidates, so a search on one run selects lucky candidates. With ``fitness_seeds=R`` every
candidate is trained R times, on seeds ``seed, seed+1, …, seed+R−1`` (each its own data split,
data order and initial weights, shared by every candidate: still common random numbers), and
its fitness is the mean of the R validation accuracies,

```
fitness = (1/R) Σ_r a_r,     a_r = 0 for a replica that diverged,
```

so a loss that diverges on some seeds pays for it; a candidate fails only if all R diverge.

The early-abort rule of the TaylorGLO paper acts on each replica: it stops candidates that
have not started learning (validation accuracy < 0.15 at epoch 10); a candidate whose loss or
gradient becomes non-finite is reported as ``"diverged"``, never raised.

References:
    Gonzalez & Miikkulainen, *Optimizing Loss Functions Through Multivariate Taylor Polynomial
    Parameterization*, arXiv:2002.00059 (partial training, early abort).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np

from metaloss import data as data_module
from metaloss import losses
from metaloss.losses._base import invalid_value
from metaloss.search.dashboard import ScalarLogger
from metaloss.training.experiment import build_model, build_optimizer
from metaloss.training.population import PopulationTrainer
from metaloss.training.trainer import Trainer

__all__ = ["CandidateResult", "EarlyAbort", "SearchTask", "evaluate_candidates"]


_OBJECTIVES = ("accuracy", "robust")
_ATTACK_LOSSES = ("own", "cross_entropy")


def _check_int(name, value, minimum, *, optional=True):
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        expected = f"an integer >= {minimum}" + (" or None" if optional else "")
        raise invalid_value(name, expected, value)


@dataclass(frozen=True)
class SearchTask:
    """What a candidate loss is scored on: dataset, model, optimizer and partial budget.

    Attributes:
        dataset: a :func:`metaloss.data.load` name. Defaults to `"mnist1d"`.
        model: a :func:`metaloss.models.get` name, with arguments as ``"name:k=v"``.
            Defaults to `"mlp"`.
        epochs: partial-training budget in epochs. Defaults to `None`.
        steps: partial-training budget in optimizer steps (MNIST in the paper: 2 000).
            Defaults to `None`; when both are `None` the budget is 5 epochs.
        batch_size: Defaults to `128`.
        optimizer: "sgd" or "adam". Defaults to `"sgd"`.
        learning_rate: Defaults to `None` (the schedule's).
        momentum: Defaults to `0.9`.
        weight_decay: Defaults to `0.0`.
        schedule: a paper schedule name; its milestones stay those of full training.
            Defaults to `"constant"`.
        validation_split: held-out share of the training data the fitness is measured on.
            Defaults to `0.1`.
        subset_fraction: share of the rest used for training. Defaults to `1.0`.
        data_dir: where downloadable datasets' archives are. Defaults to `None`.
        seed: the data split, data order and initial weights shared by every candidate (with
            ``fitness_seeds=R``, the first of the R seeds ``seed .. seed+R-1``).
            Defaults to `0`.
        abort_epoch: the epoch whose validation accuracy decides the early abort.
            Defaults to `10`; `None` disables the rule.
        abort_threshold: candidates below this validation accuracy at ``abort_epoch`` stop.
            Defaults to `0.15`.
        jit_compile: XLA-compile the training steps. Defaults to `None`.
        objective: the fitness: `"accuracy"` (validation accuracy) or `"robust"` (validation
            accuracy on FGSM examples of size ``attack_eps``, the regularization paper's
            robustness-evolving configuration; needs the `adversarial` extra).
            Defaults to `"accuracy"`.
        attack_eps: ε of the FGSM attack for ``objective="robust"``, in input units (pixels in
            [0, 1], clipped to that range for image datasets). Defaults to `0.1`.
        attack_loss: whose input gradient the attack follows: `"cross_entropy"`, the standard
            attack, or `"own"`, the candidate's loss as in the paper's code. `"own"` can be
            gamed: a loss whose input gradient is uninformative or points toward the true class
            scores *higher* under attack than clean. Defaults to `"cross_entropy"`.
        fitness_seeds: R, the seeds each candidate is trained on; its fitness is the mean of
            their validation accuracies (0 for a replica that diverged). Defaults to `1`.
    """

    dataset: str = "mnist1d"
    model: str = "mlp"
    epochs: int | None = None
    steps: int | None = None
    batch_size: int = 128
    optimizer: str = "sgd"
    learning_rate: float | None = None
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = "constant"
    validation_split: float = 0.1
    subset_fraction: float = 1.0
    data_dir: str | None = None
    seed: int = 0
    abort_epoch: int | None = 10
    abort_threshold: float = 0.15
    jit_compile: bool | None = None
    objective: str = "accuracy"
    attack_eps: float = 0.1
    attack_loss: str = "cross_entropy"
    fitness_seeds: int = 1

    def __post_init__(self) -> None:
        if self.objective not in _OBJECTIVES:
            raise invalid_value("objective", f"one of {list(_OBJECTIVES)}", self.objective)
        if isinstance(self.attack_eps, bool) or not (
            isinstance(self.attack_eps, int | float)
            and math.isfinite(self.attack_eps)
            and self.attack_eps >= 0
        ):
            raise invalid_value("attack_eps", "a finite number >= 0", self.attack_eps)
        if self.attack_loss not in _ATTACK_LOSSES:
            raise invalid_value("attack_loss", f"one of {list(_ATTACK_LOSSES)}", self.attack_loss)
        _check_int("epochs", self.epochs, 1)
        _check_int("steps", self.steps, 1)
        if self.epochs is None and self.steps is None:
            object.__setattr__(self, "epochs", 5)
        _check_int("batch_size", self.batch_size, 1, optional=False)
        _check_int("seed", self.seed, 0, optional=False)
        _check_int("fitness_seeds", self.fitness_seeds, 1, optional=False)
        _check_int("abort_epoch", self.abort_epoch, 1)
        if not 0.0 <= float(self.abort_threshold) <= 1.0:
            raise invalid_value("abort_threshold", "a number in [0, 1]", self.abort_threshold)
        if not 0.0 < float(self.validation_split) < 1.0:
            raise invalid_value(
                "validation_split",
                "a number in (0, 1): the search measures fitness on held-out data",
                self.validation_split,
            )

    @property
    def seeds(self) -> list[int]:
        """The seeds every candidate is trained on: ``seed .. seed + fitness_seeds - 1``."""
        return [self.seed + r for r in range(self.fitness_seeds)]

    def with_seed(self, seed: int) -> SearchTask:
        """This task on the single seed ``seed`` (``fitness_seeds=1``)."""
        return dataclasses.replace(self, seed=seed, fitness_seeds=1)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, config: dict) -> SearchTask:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(config) - known)
        if unknown:
            raise invalid_value("config", f"keys among {sorted(known)}", unknown)
        return cls(**config)

    def load_data(self) -> data_module.Dataset:
        """The task's data; every call gives pipelines in the same (seeded) order."""
        keras.utils.set_random_seed(self.seed)
        return data_module.load(
            self.dataset,
            validation_split=self.validation_split,
            subset_fraction=self.subset_fraction,
            seed=self.seed,
            data_dir=self.data_dir,
            batch_size=self.batch_size,
        )


@dataclass
class CandidateResult:
    """How one candidate did.

    Attributes:
        score: validation accuracy at the end of the partial budget (at the abort for aborted
            candidates), on FGSM examples for ``objective="robust"``; with several fitness
            seeds, the mean over them (0 for a diverged replica); NaN for a diverged candidate.
        status: ``"completed"``, ``"aborted"`` (early-abort rule: every replica that did not
            diverge was aborted) or ``"diverged"`` (every replica diverged).
        message: a sentence about the status.
        history: per-epoch ``loss``, ``accuracy``, ``val_loss``, ``val_accuracy`` (with
            several seeds, each epoch's mean over the replicas that trained it).
        epochs: epochs trained (the longest replica). steps: optimizer steps taken (all
            replicas). seconds: wall time (all replicas).
        seeds: the seeds trained on. seed_scores: each seed's score (NaN where it diverged).
        seed_statuses: each seed's status.
    """

    score: float
    status: str
    message: str
    history: dict[str, list[float]] = field(default_factory=dict)
    epochs: int = 0
    steps: int = 0
    seconds: float = 0.0
    seeds: list[int] = field(default_factory=list)
    seed_scores: list[float] = field(default_factory=list)
    seed_statuses: list[str] = field(default_factory=list)


class EarlyAbort(keras.callbacks.Callback):
    """Stops training when validation accuracy is below ``threshold`` after ``epoch`` epochs.

    Args:
        epoch: the (1-based) epoch at which the rule is checked. Defaults to `10`.
        threshold: the validation accuracy a candidate must reach. Defaults to `0.15`.
    """

    def __init__(self, epoch: int = 10, threshold: float = 0.15) -> None:
        super().__init__()
        self.epoch = epoch
        self.threshold = threshold
        self.aborted = False

    def on_epoch_end(self, epoch, logs=None):
        accuracy = (logs or {}).get("val_accuracy")
        if epoch + 1 == self.epoch and accuracy is not None and accuracy < self.threshold:
            self.aborted = True
            self.model.stop_training = True


def _setup(task: SearchTask):
    data = task.load_data()  # seeds, then gives the same data order to every candidate
    network = build_model(task.model, data)
    optimizer = build_optimizer(
        data,
        task.optimizer,
        task.learning_rate,
        momentum=task.momentum,
        weight_decay=task.weight_decay,
        schedule=task.schedule,
    )
    return data, network, optimizer


def _callbacks(task: SearchTask, log_dir: Path | None) -> tuple[list, EarlyAbort | None]:
    callbacks, abort = [], None
    if task.abort_epoch is not None:
        abort = EarlyAbort(task.abort_epoch, task.abort_threshold)
        callbacks.append(abort)
    if log_dir is not None:
        callbacks.append(ScalarLogger(log_dir))
    return callbacks, abort


def _candidate_result(task, fit, abort, robust_score, seconds) -> CandidateResult:
    """A candidate's fitness and status from its training run (and its FGSM score)."""
    history = fit.history
    if fit.status == "diverged":
        score, status, message = math.nan, "diverged", fit.message
    else:
        score = history["val_accuracy"][-1] if history.get("val_accuracy") else math.nan
        if abort is not None and abort.aborted:
            status = "aborted"
            message = (
                f"early abort: validation accuracy {score:.4f} < {task.abort_threshold} "
                f"at epoch {task.abort_epoch}"
            )
        else:
            status, message = "completed", fit.message
        if task.objective == "robust":
            clean, score = score, robust_score()
            message += (
                f"; fitness: FGSM (eps={task.attack_eps}) validation accuracy {score:.4f}, "
                f"clean {clean:.4f}"
            )
    return CandidateResult(
        score=float(score),
        status=status,
        message=message,
        history=history,
        epochs=fit.epochs,
        steps=fit.steps,
        seconds=seconds,
    )


def _seed_log_dir(log_dir: Path | None, task: SearchTask, seed: int) -> Path | None:
    """One TensorBoard run per seed (``seed_<s>`` under the trial's) when there are several."""
    if log_dir is None or task.fitness_seeds == 1:
        return log_dir
    return log_dir / f"seed_{seed}"


def _mean_history(histories: list[dict]) -> dict[str, list[float]]:
    keys = sorted({key for history in histories for key in history})
    mean = {}
    for key in keys:
        series = [h[key] for h in histories if key in h]
        length = max(len(values) for values in series)
        mean[key] = [
            float(np.mean([values[i] for values in series if len(values) > i]))
            for i in range(length)
        ]
    return mean


def _combined(task: SearchTask, results: list[CandidateResult]) -> CandidateResult:
    """One candidate's result from its replicas' (one per fitness seed): the mean score, a
    diverged replica counting 0; diverged only if every replica diverged."""
    seeds = task.seeds
    statuses = [r.status for r in results]
    seed_scores = [r.score for r in results]
    common = {
        "epochs": max(r.epochs for r in results),
        "steps": sum(r.steps for r in results),
        "seconds": sum(r.seconds for r in results),
        "seeds": seeds,
        "seed_scores": seed_scores,
        "seed_statuses": statuses,
    }
    if len(results) == 1:
        return dataclasses.replace(results[0], **common)
    history = _mean_history([r.history for r in results if r.status != "diverged"])
    diverged = statuses.count("diverged")
    if diverged == len(results):
        message = f"all {len(results)} seeds diverged; seed {seeds[0]}: {results[0].message}"
        return CandidateResult(math.nan, "diverged", message, history, **common)
    score = float(
        np.mean(
            [0.0 if st == "diverged" else sc for st, sc in zip(statuses, seed_scores, strict=True)]
        )
    )
    status = "completed" if "completed" in statuses else "aborted"
    shown = ", ".join(
        "diverged" if st == "diverged" else f"{sc:.4f}"
        for st, sc in zip(statuses, seed_scores, strict=True)
    )
    message = f"mean of {len(results)} seeds ({shown})"
    if diverged:
        message += f"; {diverged} of {len(results)} diverged, scored 0"
    if status == "aborted":
        message += f"; {results[statuses.index('aborted')].message}"
    return CandidateResult(score, status, message, history, **common)


def _evaluate_one(task: SearchTask, loss, log_dir: Path | None, extra: list) -> CandidateResult:
    return _combined(
        task,
        [
            _evaluate_run(task.with_seed(seed), loss, _seed_log_dir(log_dir, task, seed), extra)
            for seed in task.seeds
        ],
    )


def _evaluate_run(task: SearchTask, loss, log_dir: Path | None, extra: list) -> CandidateResult:
    start = time.perf_counter()
    data, network, optimizer = _setup(task)
    trainer = Trainer(network, loss, optimizer, jit_compile=task.jit_compile)
    callbacks, abort = _callbacks(task, log_dir)
    callbacks += extra
    fit = trainer.fit(
        data.train,
        epochs=task.epochs,
        steps=task.steps,
        validation=data.validation,
        callbacks=callbacks,
        verbose=0,
    )
    result = _candidate_result(
        task,
        fit,
        abort,
        lambda: _robust_score(task, network, loss, data),
        time.perf_counter() - start,
    )
    keras.backend.clear_session(free_memory=False)
    return result


def _evaluate_together(task: SearchTask, losses_, log_dirs, extras) -> list[CandidateResult]:
    """Trains the candidates as one population (one compiled step for all of them): with R
    fitness seeds, K × R replicas, replica ``k·R + r`` being candidate k on seed r's stream."""
    start = time.perf_counter()
    seeds = task.seeds
    tasks = [task.with_seed(seed) for seed in seeds]
    setups = [_setup(t) for t in tasks]  # each seeds, then builds its data and initial weights
    data, network, optimizer = setups[0]
    several = len(seeds) > 1
    replicas = [(k, r) for k in range(len(losses_)) for r in range(len(seeds))]
    trainer = PopulationTrainer(
        network,
        [losses_[k] for k, _ in replicas],
        optimizer,
        # Each seed's own initial weights and normalization statistics (its split's).
        replica_models=[setups[r][1] for _, r in replicas] if several else None,
        streams=[r for _, r in replicas] if several else None,
        jit_compile=task.jit_compile,
    )
    per_replica = [
        _callbacks(tasks[r], _seed_log_dir(log_dirs[k], task, seeds[r])) for k, r in replicas
    ]
    datasets = [setup[0] for setup in setups]
    fits = trainer.fit(
        [d.train for d in datasets] if several else data.train,
        epochs=task.epochs,
        steps=task.steps,
        validation=[d.validation for d in datasets] if several else data.validation,
        callbacks=[
            [*callbacks, *extras[k]]
            for (callbacks, _), (k, _) in zip(per_replica, replicas, strict=True)
        ],
        verbose=0,
    )
    seconds = (time.perf_counter() - start) / len(losses_)  # the group's time, shared
    runs = [
        _candidate_result(
            tasks[r],
            fit,
            abort,
            lambda i=i, k=k, r=r: _robust_score(
                tasks[r], trainer.replica_model(i), losses_[k], datasets[r]
            ),
            seconds / len(seeds),
        )
        for i, ((k, r), fit, (_, abort)) in enumerate(zip(replicas, fits, per_replica, strict=True))
    ]
    results = [
        _combined(task, runs[k * len(seeds) : (k + 1) * len(seeds)]) for k in range(len(losses_))
    ]
    keras.backend.clear_session(free_memory=False)
    return results


def _robust_score(task: SearchTask, network, loss, data) -> float:
    """Validation accuracy on FGSM examples (the robustness objective)."""
    from metaloss.analysis.robustness import default_clip, robust_accuracy

    curve = robust_accuracy(
        network,
        data.validation,
        eps=[task.attack_eps],
        gradient_loss=loss if task.attack_loss == "own" else "cross_entropy",
        clip=default_clip(data.input_shape),
    )
    return curve[float(task.attack_eps)]


def evaluate_candidates(
    task: SearchTask,
    candidates: Sequence,
    *,
    log_dirs: Sequence[str | Path | None] | None = None,
    parallel_candidates: int = 1,
    callbacks: Sequence[Sequence] | None = None,
) -> list[CandidateResult]:
    """Partially trains one model per candidate loss and scores it on validation accuracy.

    Args:
        task: the :class:`SearchTask` (data, model, optimizer, budget, abort rule).
        candidates: losses, or anything :func:`metaloss.losses.get` accepts (names get
            ``from_logits=True``).
        log_dirs: one TensorBoard directory per candidate (or `None` for no logging).
            Defaults to `None`.
        parallel_candidates: train up to this many candidates at once, as the replicas of one
            :class:`~metaloss.training.PopulationTrainer` (one compiled step for the group;
            with ``task.fitness_seeds=R``, K × R replicas on R data streams); ``1`` trains
            them one after another. The results agree
            with sequential training to float round-off; ``seconds`` is then the group's wall
            time divided by its size. Defaults to `1`.
        callbacks: one list of extra Keras callbacks per candidate, driven by that candidate's
            epochs (a search's heartbeat, for instance; with several fitness seeds, by each of
            its replicas' epochs). Defaults to `None`.

    Returns:
        One :class:`CandidateResult` per candidate, in order. Diverged candidates come back
        with status ``"diverged"`` and a NaN score; nothing is raised for them.

    Example:

    ```python
    task = SearchTask("mnist1d", "mlp", epochs=3)
    [r.score for r in evaluate_candidates(task, ["cross_entropy", "baikal"])]
    ```
    """
    if not isinstance(task, SearchTask):
        raise invalid_value("task", "a SearchTask", type(task).__name__)
    candidates = [losses.get(c, from_logits=True) for c in candidates]
    if log_dirs is None:
        log_dirs = [None] * len(candidates)
    elif len(log_dirs) != len(candidates):
        raise invalid_value("log_dirs", f"{len(candidates)} entries, one per candidate", log_dirs)
    if callbacks is None:
        callbacks = [[] for _ in candidates]
    elif len(callbacks) != len(candidates):
        raise invalid_value("callbacks", f"{len(candidates)} lists, one per candidate", callbacks)
    _check_int("parallel_candidates", parallel_candidates, 1, optional=False)
    log_dirs = [None if d is None else Path(d) for d in log_dirs]
    if parallel_candidates == 1:
        return [
            _evaluate_one(task, loss, d, list(extra))
            for loss, d, extra in zip(candidates, log_dirs, callbacks, strict=True)
        ]
    results = []
    for first in range(0, len(candidates), parallel_candidates):
        group = slice(first, first + parallel_candidates)
        results += _evaluate_together(task, candidates[group], log_dirs[group], callbacks[group])
    return results
