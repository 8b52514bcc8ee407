"""`TaylorGLOSearch`: a KerasTuner tuner whose trials partially train a model with a candidate loss.

The oracle (CMA-ES by default) proposes loss parameters; ``run_trial`` builds the candidate loss
from them, trains the task's model for the partial budget through
:func:`~metaloss.search.evaluate_candidates` and reports the validation accuracy. Diverged
candidates become failed trials with a message (CMA-ES scores them worst); the search goes on.
Each trial writes TensorBoard scalars and HParams summaries under ``<directory>/logs``, its
result under ``<directory>/trials/trial_<id>/candidate.json``, and the search writes the best
loss as ``<directory>/best_loss.json``.

With ``parallel_candidates=K`` the tuner asks the oracle for up to K trials at once (under K
tuner ids: KerasTuner's oracle hands each tuner id one ongoing trial) and trains them together
as one :class:`~metaloss.training.PopulationTrainer`; each trial is then reported as if it had
run alone.

Distributed search uses KerasTuner's chief/worker mode unchanged: run the same script with
``KERASTUNER_TUNER_ID=chief`` (the oracle) and ``worker0``, ``worker1``... (the trainers), all
with ``KERASTUNER_ORACLE_IP`` and ``KERASTUNER_ORACLE_PORT`` set to the chief's address. With a
``trial_timeout``, the chief serves again the candidate of a worker that went silent (killed
mid-trial: keras-team/keras-tuner issue #915), and a worker whose chief stops answering for that
long raises :class:`~metaloss.search._chief.ChiefNotAnswering`.

References:
    Gonzalez & Miikkulainen, *Optimizing Loss Functions Through Multivariate Taylor Polynomial
    Parameterization*, arXiv:2002.00059.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import keras
import keras_tuner
from keras_tuner.engine import trial as trial_module
from keras_tuner.src.distribute import utils as dist_utils

from metaloss import losses
from metaloss.data import catalog
from metaloss.search._chief import guard_chief_calls
from metaloss.search._files import write_json_atomically
from metaloss.search.dashboard import write_hparams_config, write_trial_summary
from metaloss.search.evaluate import SearchTask, evaluate_candidates
from metaloss.search.generational import GenerationalOracle
from metaloss.search.oracle import DEFAULT_REJECTED, DEFAULT_SIGMA0, HEARTBEAT_METRIC, CMAESOracle
from metaloss.search.progress import SearchProgress
from metaloss.search.reevaluation import (
    REEVALUATION_FILE,
    distinct_best,
    read_reevaluation,
    reevaluate,
    seeds_after,
)
from metaloss.search.results import read_search
from metaloss.search.spaces import TaylorGLOInvariant, TaylorGLOSpace

__all__ = [
    "BEST_LOSS_FILE",
    "CANDIDATE_FILE",
    "LOG_DIR",
    "OBJECTIVE",
    "SEARCH_FILE",
    "TRIALS_DIR",
    "TaylorGLOSearch",
]

SEARCH_FILE = "search.json"
BEST_LOSS_FILE = "best_loss.json"
TRIALS_DIR = "trials"
LOG_DIR = "logs"
CANDIDATE_FILE = "candidate.json"
OBJECTIVE = keras_tuner.Objective("val_accuracy", direction="max")
_MAX_IDLE_SLEEP = 2.0


class TaylorGLOSearch(keras_tuner.Tuner):
    """Evolves a loss function for a task with CMA-ES and partial training (TaylorGLO).

    Args:
        task: the :class:`~metaloss.search.SearchTask` every candidate is trained on.
            Defaults to `None` (``SearchTask()``: MNIST-1D, MLP, 5 epochs).
        generations: CMA-ES generations. Defaults to `None` (give it, or ``max_trials``).
        population_size: candidates per generation. Defaults to `None` (pycma's 4 + 3 ln N).
        max_trials: trained trials at most. Defaults to `None`.
        sigma0: CMA-ES initial step size, in the TaylorGLO reference's units: the space's
            ``sigma_scale`` (when it has one) multiplies it per parameter, so that
            :class:`~metaloss.search.TaylorGLOSpace` starts θ_i with the step
            ``sigma0 · (1, 1, 1, 2, 6, 1, 2, 2)_i``
            (:data:`~metaloss.search.spaces.REFERENCE_SCALE`). Defaults to `1.2` (the
            reference's).
        seed: seeds CMA-ES (the same seed gives the same candidates; 0 is an ordinary seed).
            Defaults to `None` (random).
        invariant: reject TaylorGLO candidates that break the invariant before training.
            Defaults to `True` (used only with the TaylorGLO space).
        rejected: what CMA-ES is told of candidates the invariant rejects: ``"worst"`` (the
            reference's rule, all tie) or ``"ranked"`` (worse than every trained candidate,
            ordered by how far they break the invariant; see
            :class:`~metaloss.search.CMAESOracle`). A resumed search keeps its saved rule.
            Defaults to :data:`~metaloss.search.oracle.DEFAULT_REJECTED` (``"worst"``).
        hypermodel: the loss space: a hypermodel whose ``build(hp)`` returns a loss.
            Defaults to `None` (:class:`~metaloss.search.TaylorGLOSpace`).
        oracle: a KerasTuner oracle replacing the CMA-ES one built from the arguments above.
            Its objective must be ``val_accuracy`` (max). Defaults to `None`.
        fitness_seeds: R, the seeds every candidate is trained on (``SearchTask``'s
            ``fitness_seeds``, which this overrides when given): its score is the mean of its
            R validation accuracies, the per-seed ones kept in ``candidate.json``, the trial's
            metrics and TensorBoard. Defaults to `None` (the task's, 1 unless set there).
        reevaluate_top: when the search ends, retrain its k best distinct candidates on
            ``reevaluate_seeds`` fresh seeds (disjoint from the search's) and crown the best
            re-evaluated mean as :meth:`best_loss`; writes ``reevaluation.json``. Defaults to
            `0` (crown the best search score).
        reevaluate_seeds: M, the seeds of the re-evaluation: ``seed + R .. seed + R + M - 1``
            for a task on seeds ``seed .. seed + R - 1``. Defaults to `3`.
        tensorboard: write TensorBoard scalars and HParams summaries. Defaults to `True`.
        parallel_candidates: train up to this many candidates at once in one compiled program
            (:func:`~metaloss.search.evaluate_candidates`'s ``parallel_candidates``); fitness
            values agree with one-at-a-time training to float round-off. A worker of a
            distributed search serves that many trials under the ids ``<tuner_id>``,
            ``<tuner_id>-1``, ... Defaults to `1`.
        directory: the search directory. Defaults to `"."`.
        overwrite: start afresh even if ``directory`` holds a search (otherwise it resumes).
            Defaults to `False`.
        trial_timeout: seconds of silence after which the CMA-ES oracle abandons a running
            trial and serves its candidate again (:class:`~metaloss.search.CMAESOracle`'s
            ``trial_timeout``; every trial sends a heartbeat after each epoch, so make it longer
            than the longest epoch), and after which a distributed worker gives up on a chief
            that stopped answering. Defaults to `None` (wait for ever; a worker keeps
            KerasTuner's one-hour deadline per call).
        **kwargs: other ``keras_tuner.Tuner`` arguments.

    Example:

    ```python
    task = metaloss.search.SearchTask("mnist1d", "mlp", epochs=5)
    search = metaloss.search.TaylorGLOSearch(task, generations=4, population_size=8,
                                             seed=0, directory="runs/search")
    search.search()
    model.compile(loss=search.best_loss())
    ```
    """

    def __init__(
        self,
        task: SearchTask | None = None,
        *,
        generations: int | None = None,
        population_size: int | None = None,
        max_trials: int | None = None,
        sigma0: float | Sequence[float] = DEFAULT_SIGMA0,
        seed: int | None = None,
        invariant: bool = True,
        rejected: str = DEFAULT_REJECTED,
        hypermodel: keras_tuner.HyperModel | None = None,
        oracle: keras_tuner.Oracle | None = None,
        fitness_seeds: int | None = None,
        reevaluate_top: int = 0,
        reevaluate_seeds: int = 3,
        tensorboard: bool = True,
        parallel_candidates: int = 1,
        directory: str | Path | None = None,
        overwrite: bool = False,
        trial_timeout: float | None = None,
        **kwargs,
    ) -> None:
        task = SearchTask() if task is None else task
        if not isinstance(task, SearchTask):
            raise ValueError(
                f"Invalid value for argument `task`. Expected a SearchTask. Received: task={task!r}"
            )
        if (
            isinstance(parallel_candidates, bool)
            or not isinstance(parallel_candidates, int)
            or parallel_candidates < 1
        ):
            raise ValueError(
                "Invalid value for argument `parallel_candidates`. Expected an integer >= 1. "
                f"Received: parallel_candidates={parallel_candidates!r}"
            )
        if fitness_seeds is not None:
            task = dataclasses.replace(task, fitness_seeds=fitness_seeds)
        for name, value, minimum in (
            ("reevaluate_top", reevaluate_top, 0),
            ("reevaluate_seeds", reevaluate_seeds, 1),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(
                    f"Invalid value for argument `{name}`. Expected an integer >= {minimum}. "
                    f"Received: {name}={value!r}"
                )
        num_classes = catalog.check_name(task.dataset).num_classes
        hypermodel = TaylorGLOSpace() if hypermodel is None else hypermodel
        if oracle is None:
            if generations is None and max_trials is None:
                raise ValueError(
                    "Invalid value for argument `generations`. Expected a positive integer "
                    "when `max_trials` is None (a search needs an end). Received: generations=None"
                )
            use_invariant = invariant and isinstance(hypermodel, TaylorGLOSpace)
            oracle = CMAESOracle(
                OBJECTIVE,
                max_trials=max_trials,
                generations=generations,
                population_size=population_size,
                sigma0=sigma0,
                sigma_scale=getattr(hypermodel, "sigma_scale", None),
                seed=seed,
                prefilter=TaylorGLOInvariant(num_classes) if use_invariant else None,
                rejected=rejected,
                max_consecutive_failed_trials=kwargs.pop("max_consecutive_failed_trials", 3),
                trial_timeout=trial_timeout,
            )
        self.task = task
        self.reevaluate_top = reevaluate_top
        self.reevaluate_seeds = reevaluate_seeds
        self.parallel_candidates = parallel_candidates
        self.search_directory = Path(directory if directory is not None else ".")
        self.tensorboard = tensorboard
        if overwrite:
            for name in (LOG_DIR, BEST_LOSS_FILE, SEARCH_FILE, REEVALUATION_FILE):
                path = self.search_directory / name
                shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
        kwargs.setdefault("project_name", TRIALS_DIR)
        super().__init__(
            oracle=oracle,
            hypermodel=hypermodel,
            directory=str(self.search_directory),
            overwrite=overwrite,
            **kwargs,
        )
        # KerasTuner wraps the oracle of a distributed worker in a gRPC client.
        #: Seconds of silence after which a trial, or the chief, is given up (`None`: never).
        self.trial_timeout = getattr(oracle, "trial_timeout", trial_timeout)
        if self._is_worker():
            guard_chief_calls(self.oracle, self.trial_timeout)
        self.population_size = (
            oracle.candidates_per_generation()
            if isinstance(oracle, GenerationalOracle)
            else population_size
        )
        self.settings = {
            "method": "taylorglo",
            "task": task.to_dict(),
            "space": type(hypermodel).__name__,
            "generations": generations,
            "population_size": population_size,
            "max_trials": max_trials,
            "sigma0": sigma0,
            "seed": getattr(oracle, "search_seed", seed),
            "invariant": bool(invariant and isinstance(hypermodel, TaylorGLOSpace)),
            "rejected": getattr(oracle, "rejected", rejected),
            "num_classes": num_classes,
            "parallel_candidates": parallel_candidates,
            "fitness_seeds": task.fitness_seeds,
            "reevaluate_top": reevaluate_top,
            "reevaluate_seeds": reevaluate_seeds,
        }
        if not self._is_worker():
            write_json_atomically(self.search_directory / SEARCH_FILE, self.settings)
        self._progress: SearchProgress | None = None
        self._idle_polls = 0
        self._ran_a_trial = True
        self._batch_results: dict[str, object] = {}

    # The search loop ------------------------------------------------------------------------

    def search(self, *, verbose: int = 1) -> None:
        """Runs the search to its end (or, on a chief, serves the oracle to the workers).

        Args:
            verbose: 0 silent, 1 a live progress bar, 2 one line per trial. Defaults to `1`.
        """
        self.oracle.verbose = 0  # KerasTuner's own per-trial display
        self._progress = SearchProgress(self.oracle, verbose=verbose)
        if self.parallel_candidates == 1 or dist_utils.is_chief_oracle():
            super().search()
        else:
            self._search_in_groups()
        self._progress.close()
        if not self._is_worker() and self._best_completed() is not None:
            self._before_reevaluation(verbose)
            if self.reevaluate_top:
                self._reevaluate(verbose)
            self.save_best_loss()

    def _before_reevaluation(self, verbose: int) -> None:
        """What a method does once the search has ended, before its best are re-evaluated
        (EvoMAL's local search); nothing for TaylorGLO."""

    def _trial_loss(self, trial) -> keras.losses.Loss:
        """The loss a finished trial stands for (what the re-evaluation trains and
        :meth:`best_loss` returns)."""
        return self.hypermodel.build(trial.hyperparameters)

    def on_search_begin(self) -> None:
        super().on_search_begin()
        if self.tensorboard:
            write_hparams_config(self.search_directory / LOG_DIR, self.oracle.get_space())
        self._ran_a_trial = True

    def pre_create_trial(self) -> None:
        """Waits before asking again when the oracle answered IDLE (no busy loop)."""
        if self._ran_a_trial:
            self._ran_a_trial, self._idle_polls = False, 0
            return
        self._idle_polls += 1
        time.sleep(min(0.05 * 2**self._idle_polls, _MAX_IDLE_SLEEP))

    def _search_in_groups(self) -> None:
        """KerasTuner's search loop, with up to ``parallel_candidates`` trials per turn."""
        self.on_search_begin()
        stopped = False
        while not stopped:
            self.pre_create_trial()
            group = []
            for slot in range(self.parallel_candidates):
                trial = self.oracle.create_trial(self._slot_id(slot))
                if trial.status == trial_module.TrialStatus.STOPPED:
                    stopped = True
                if trial.status != trial_module.TrialStatus.RUNNING:
                    break
                group.append(trial)
            if not group:
                continue
            self._train_group(group)
            for trial in group:
                self.on_trial_begin(trial)
                self._try_run_and_update_trial(trial)  # reports the result trained above
                self.on_trial_end(trial)
        if self._is_worker():
            # KerasTuner's chief exits only once every tuner id it served was told STOPPED;
            # the loop above stops at the first slot told so, the others must hear it too.
            for slot in range(self.parallel_candidates):
                self.oracle.create_trial(self._slot_id(slot))
        self.on_search_end()

    def _slot_id(self, slot: int) -> str:
        return self.tuner_id if slot == 0 else f"{self.tuner_id}-{slot}"

    def _train_group(self, group) -> None:
        """Trains the group's candidates together; keeps each trial's result (or the error)."""
        built = [self._candidate_loss(trial) for trial in group]
        try:
            results = evaluate_candidates(
                self.task,
                [loss for loss, _ in built],
                log_dirs=[log_dir for _, log_dir in built],
                parallel_candidates=self.parallel_candidates,
                callbacks=[self._heartbeat(trial) for trial in group],
            )
        except Exception as error:  # each trial then fails as a crashed run_trial would
            results = [error] * len(group)
        for trial, (loss, log_dir), result in zip(group, built, results, strict=True):
            self._batch_results[trial.trial_id] = (loss, log_dir, result)

    def _heartbeat(self, trial) -> list:
        """With a ``trial_timeout``: a callback telling the oracle after every epoch that the
        trial is alive, so a trial need only finish each epoch within the timeout."""
        if self.trial_timeout is None:
            return []
        return [_Heartbeat(self.oracle, trial.trial_id)]

    def _candidate_loss(self, trial):
        loss = self.hypermodel.build(trial.hyperparameters)
        log_dir = None
        if self.tensorboard:
            log_dir = self.search_directory / LOG_DIR / f"trial_{trial.trial_id}"
            shutil.rmtree(log_dir, ignore_errors=True)  # a retried trial logs afresh
        return loss, log_dir

    def run_trial(self, trial, *args, **kwargs) -> dict:
        """Trains the task's model with the trial's candidate loss; returns its val accuracy."""
        if trial.trial_id in self._batch_results:
            loss, log_dir, result = self._batch_results.pop(trial.trial_id)
            if isinstance(result, Exception):
                raise result
        else:
            loss, log_dir = self._candidate_loss(trial)
            [result] = evaluate_candidates(
                self.task, [loss], log_dirs=[log_dir], callbacks=[self._heartbeat(trial)]
            )
        values = dict(trial.hyperparameters.values)
        write_json_atomically(
            Path(self.get_trial_dir(trial.trial_id)) / CANDIDATE_FILE,
            {
                "trial_id": trial.trial_id,
                "values": values,
                "loss": losses.serialize(loss),
                **dataclasses.asdict(result),
            },
        )
        if log_dir is not None:
            write_trial_summary(
                log_dir,
                trial.trial_id,
                values,
                status=result.status,
                score=None if result.status == "diverged" else result.score,
                epochs=result.epochs,
                seed_scores=(
                    dict(zip(result.seeds, result.seed_scores, strict=True))
                    if len(result.seeds) > 1
                    else None
                ),
            )
        if result.status == "diverged":
            raise keras_tuner.errors.FailedTrialError(f"candidate diverged: {result.message}")
        metrics = {OBJECTIVE.name: result.score}
        if len(result.seeds) > 1:  # each seed's score, kept in the trial beside the mean
            metrics.update(
                {
                    f"{OBJECTIVE.name}_seed_{seed}": 0.0 if math.isnan(score) else score
                    for seed, score in zip(result.seeds, result.seed_scores, strict=True)
                }
            )
        return metrics

    def on_trial_end(self, trial) -> None:
        super().on_trial_end(trial)
        self._ran_a_trial = True
        if self._progress is not None:
            self._progress.trial_ended(trial, self._candidate(trial.trial_id))

    def save(self) -> None:
        """Saves oracle and tuner state, each file written atomically."""
        if not self._is_worker():
            self.oracle.save()
        write_json_atomically(self._get_tuner_fname(), self.get_state())

    # Results --------------------------------------------------------------------------------

    def _candidate(self, trial_id: str) -> dict | None:
        path = Path(self.get_trial_dir(trial_id)) / CANDIDATE_FILE
        return json.loads(path.read_text()) if path.exists() else None

    def _best_completed(self):
        best = self.oracle.get_best_trials(1)
        if best and best[0].status == trial_module.TrialStatus.COMPLETED:
            return best[0]
        return None

    def _reevaluate(self, verbose: int) -> dict:
        """Retrains the best distinct candidates on fresh seeds (see ``reevaluate_top``)."""
        record = read_search(self.search_directory)
        top = distinct_best(record.trials, self.reevaluate_top)
        candidates = []
        for trial in top:
            saved = self._candidate(trial.trial_id) or {}
            candidates.append(
                {
                    "trial_id": trial.trial_id,
                    "values": trial.values,
                    "loss": saved.get("loss"),
                    "search_score": trial.score,
                    "search_seed_scores": saved.get("seed_scores", []),
                }
            )
        seeds = seeds_after(self.task, self.reevaluate_seeds)
        if verbose:
            print(
                f"Re-evaluating the {len(candidates)} best candidates on {len(seeds)} fresh "
                f"seeds ({seeds[0]}..{seeds[-1]})",
                file=self._progress.stream if self._progress else sys.stdout,
                flush=True,
            )
        return reevaluate(
            self.search_directory,
            self.task,
            candidates,
            lambda c: self._trial_loss(self.oracle.trials[c["trial_id"]]),
            seeds=seeds,
            parallel_candidates=self.parallel_candidates,
        )

    def _crowned_trial(self):
        """The re-evaluation's winner when a complete one is on disk, else the best trial."""
        state = read_reevaluation(self.search_directory)
        if state and state.get("complete") and state.get("best_trial_id") in self.oracle.trials:
            return self.oracle.trials[state["best_trial_id"]]
        return self._best_completed()

    def best_loss(self) -> keras.losses.Loss:
        """The best candidate's loss (a ``TaylorGLO`` for the default space): the best
        re-evaluated candidate after a re-evaluation (``reevaluate_top``), else the best
        search score.

        Raises:
            RuntimeError: when no trial has completed (e.g. every candidate diverged).
        """
        best = self._crowned_trial()
        if best is None:
            raise RuntimeError(
                "No trial has completed yet: there is no best loss "
                f"({len(self.oracle.trials)} trials ran, none completed)."
            )
        return self._trial_loss(best)

    def save_best_loss(self, path: str | Path | None = None) -> Path:
        """Writes :meth:`best_loss` as a loss JSON that ``metaloss.losses.get`` and
        ``metaloss train --loss`` accept. Defaults to ``<directory>/best_loss.json``."""
        path = Path(path) if path is not None else self.search_directory / BEST_LOSS_FILE
        return losses.save(self.best_loss(), path)


class _Heartbeat(keras.callbacks.Callback):
    """Reports :data:`~metaloss.search.oracle.HEARTBEAT_METRIC` to the oracle every epoch."""

    def __init__(self, oracle, trial_id: str) -> None:
        super().__init__()
        self.oracle = oracle
        self.trial_id = trial_id

    def on_epoch_end(self, epoch, logs=None) -> None:
        self.oracle.update_trial(self.trial_id, {HEARTBEAT_METRIC: float(epoch + 1)}, step=epoch)
