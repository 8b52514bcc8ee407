"""`EvoMALSearch`: symbolic loss search by genetic programming, EvoMAL's filters, local search.

The tuner is :class:`~metaloss.search.TaylorGLOSearch`'s machinery unchanged (partial training
through :func:`~metaloss.search.evaluate_candidates`, several fitness seeds, population
training, the re-evaluation of the best candidates on fresh seeds, TensorBoard, resuming and the
chief/worker mode) over a different oracle and space: :class:`EvoMALOracle` proposes expression
strings and :class:`SymbolicSpace` turns each into a :class:`~metaloss.losses.SymbolicLoss`.

Before training, every candidate passes EvoMAL's filters (:class:`ExpressionFilters`, on the
chief): the rejection protocol (optimising an untrained model's predictions on a sample with the
candidate must lower their error rate) and gradient equivalence (a candidate whose gradient on
that sample matches an already scored one reuses its score). After the search, the edge
weights of the best expressions are tuned by unrolled differentiation
(:func:`~metaloss.search.evomal.tune_weights`, ``local_search_steps``, recorded in
``local_search.json``); tuned weights that lowered the meta-objective are what the
re-evaluation trains with and what ``best_loss.json`` holds.

References:
    Raymond, Chen, Xue, Zhang, *Learning Symbolic Model-Agnostic Loss Functions via
    Meta-Learning*, IEEE TPAMI 2023, arXiv 2209.08907.
"""

from __future__ import annotations

import json
from pathlib import Path

import keras
import keras_tuner
import numpy as np

from metaloss.losses import SymbolicLoss
from metaloss.losses._base import invalid_value
from metaloss.search._files import write_json_atomically
from metaloss.search.evaluate import SearchTask
from metaloss.search.evomal.filters import (
    DEFAULT_FILTER_GRADIENT_STEPS,
    DEFAULT_FILTER_SAMPLE_SIZE,
    GradientEquivalence,
    rejection_protocol,
)
from metaloss.search.evomal.local_search import DEFAULT_LOCAL_SEARCH_STEPS, tune_weights
from metaloss.search.evomal.oracle import (
    DEFAULT_GENERATIONS,
    DEFAULT_POPULATION_SIZE,
    EXPRESSION,
    EvoMALOracle,
)
from metaloss.search.evomal.trees import (
    DEFAULT_CROSSOVER_RATE,
    DEFAULT_ELITISM_RATE,
    DEFAULT_MUTATION_RATE,
)
from metaloss.search.reevaluation import distinct_best
from metaloss.search.results import read_search
from metaloss.search.tuner import OBJECTIVE, TaylorGLOSearch

__all__ = [
    "CROSS_ENTROPY_EXPRESSION",
    "LOCAL_SEARCH_FILE",
    "EvoMALSearch",
    "ExpressionFilters",
    "SymbolicSpace",
]

CROSS_ENTROPY_EXPRESSION = "neg(mul(y, log(f)))"
LOCAL_SEARCH_FILE = "local_search.json"


class SymbolicSpace(keras_tuner.HyperModel):
    """The space of expression losses: the hyperparameter ``expression`` (a string) to a
    :class:`~metaloss.losses.SymbolicLoss` reading logits.

    Args:
        output_activation: the losses' output activation (`None` or ``"softplus"``).
            Defaults to `None`.
    """

    def __init__(self, output_activation: str | None = None) -> None:
        super().__init__(name="symbolic_space")
        SymbolicLoss(CROSS_ENTROPY_EXPRESSION, output_activation=output_activation)  # checks it
        self.output_activation = output_activation

    def declare_hyperparameters(self, hp: keras_tuner.HyperParameters) -> None:
        hp.Fixed(EXPRESSION, CROSS_ENTROPY_EXPRESSION)

    def build(self, hp: keras_tuner.HyperParameters, weights=None) -> SymbolicLoss:
        if EXPRESSION not in hp.values:
            self.declare_hyperparameters(hp)
        return SymbolicLoss(
            hp.values[EXPRESSION],
            weights=weights,
            output_activation=self.output_activation,
            from_logits=True,
        )

    def loss(self, expression: str, weights=None) -> SymbolicLoss:
        """The loss of one expression."""
        hp = keras_tuner.HyperParameters()
        hp.values[EXPRESSION] = expression
        return self.build(hp, weights=weights)


class ExpressionFilters:
    """EvoMAL's two filters on a fixed sample of the task: an untrained model's logits on
    ``sample_size`` training examples (the task's seed picks both the model and the sample).

    ``filters.keep(values)`` is the rejection protocol (the oracle's ``prefilter``);
    ``filters.add(expression)`` / ``filters.match(expression)`` are the gradient-equivalence
    archive (the oracle's ``equivalence``). The sample is built on first use, so only the
    process that screens (the chief) loads data for it.

    Args:
        task: the search's task.
        space: the :class:`SymbolicSpace` that builds the losses.
        sample_size: examples in the sample. Defaults to `100` (EvoMAL's).
        steps: Adam steps of the rejection protocol. Defaults to `100` (EvoMAL's).
        rejection: apply the rejection protocol. Defaults to `True`.
        equivalence: apply gradient equivalence. Defaults to `True`.
    """

    def __init__(
        self,
        task: SearchTask,
        space: SymbolicSpace,
        *,
        sample_size: int = DEFAULT_FILTER_SAMPLE_SIZE,
        steps: int = DEFAULT_FILTER_GRADIENT_STEPS,
        rejection: bool = True,
        equivalence: bool = True,
    ) -> None:
        for name, value in (("sample_size", sample_size), ("steps", steps)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise invalid_value(name, "a positive integer", value)
        self.task, self.space = task, space
        self.sample_size, self.steps = sample_size, steps
        self.rejection, self.equivalence = bool(rejection), bool(equivalence)
        self._sample = None
        self._archive: GradientEquivalence | None = None

    def sample(self) -> tuple[np.ndarray, np.ndarray]:
        """``(logits, class ids)`` of the untrained model on the fixed sample."""
        if self._sample is None:
            from metaloss.training.experiment import build_model

            data = self.task.load_data()
            x, y = data.arrays("train")
            order = np.random.default_rng(self.task.seed).permutation(len(y))
            keep = np.sort(order[: min(self.sample_size, len(y))])
            keras.utils.set_random_seed(self.task.seed)
            model = build_model(self.task.model, data)
            logits = keras.ops.convert_to_numpy(model(x[keep], training=False))
            self._sample = (np.asarray(logits, dtype="float32"), np.asarray(y[keep]))
        return self._sample

    def keep(self, values: dict) -> bool:
        """The rejection protocol: whether the candidate lowers the sample's error rate."""
        if not self.rejection:
            return True
        logits, labels = self.sample()
        verdict = rejection_protocol(
            self.space.loss(values[EXPRESSION]), logits, labels, steps=self.steps
        )
        return not verdict.rejected

    def _equivalence_archive(self) -> GradientEquivalence:
        if self._archive is None:
            self._archive = GradientEquivalence(*self.sample())
        return self._archive

    def add(self, expression: str) -> None:
        """Archives a scored expression's gradient."""
        if self.equivalence:
            self._equivalence_archive().add(expression, self.space.loss(expression))

    def match(self, expression: str) -> str | None:
        """The first archived expression whose gradient matches this one's, or `None`."""
        if not self.equivalence:
            return None
        return self._equivalence_archive().match(self.space.loss(expression))


class EvoMALSearch(TaylorGLOSearch):
    """Evolves symbolic losses for a task by genetic programming with partial training (EvoMAL).

    Args:
        task: the :class:`~metaloss.search.SearchTask` every candidate is trained on.
            Defaults to `None` (``SearchTask()``).
        generations: GP generations. Defaults to `50` (EvoMAL's).
        population_size: expressions per generation. Defaults to `25` (EvoMAL's).
        max_trials: trained trials at most. Defaults to `None`.
        seed: seeds the genetic operators. Defaults to `None` (random, saved).
        crossover_rate, mutation_rate, elitism_rate: the operators' rates. Default to
            EvoMAL's (0.7, 0.25, 0.05).
        rejection: apply the rejection protocol before training. Defaults to `True`.
        equivalence: reuse the score of a gradient-equivalent scored candidate. Defaults to
            `True`.
        filter_steps: the rejection protocol's Adam steps. Defaults to `100` (EvoMAL's).
        filter_samples: the filters' sample size. Defaults to `100` (EvoMAL's).
        local_search_steps: meta steps tuning the best expressions' edge weights after the
            search (0 skips it). Defaults to `250` (EvoMAL's).
        output_activation: the losses' output activation. Defaults to `None`.
        fitness_seeds, reevaluate_top, reevaluate_seeds, tensorboard, parallel_candidates,
        directory, overwrite, trial_timeout, **kwargs: as for
            :class:`~metaloss.search.TaylorGLOSearch`. The local search tunes the
            ``reevaluate_top`` best distinct expressions (the best one when 0).

    Example:

    ```python
    task = metaloss.search.SearchTask("mnist1d", "mlp", epochs=5)
    search = metaloss.search.EvoMALSearch(task, generations=4, population_size=10, seed=0,
                                          directory="runs/evomal")
    search.search()
    model.compile(loss=search.best_loss())   # a SymbolicLoss with its tuned weights
    ```
    """

    def __init__(
        self,
        task: SearchTask | None = None,
        *,
        generations: int | None = DEFAULT_GENERATIONS,
        population_size: int = DEFAULT_POPULATION_SIZE,
        max_trials: int | None = None,
        seed: int | None = None,
        crossover_rate: float = DEFAULT_CROSSOVER_RATE,
        mutation_rate: float = DEFAULT_MUTATION_RATE,
        elitism_rate: float = DEFAULT_ELITISM_RATE,
        rejection: bool = True,
        equivalence: bool = True,
        filter_steps: int = DEFAULT_FILTER_GRADIENT_STEPS,
        filter_samples: int = DEFAULT_FILTER_SAMPLE_SIZE,
        local_search_steps: int = DEFAULT_LOCAL_SEARCH_STEPS,
        output_activation: str | None = None,
        trial_timeout: float | None = None,
        **kwargs,
    ) -> None:
        if (
            isinstance(local_search_steps, bool)
            or not isinstance(local_search_steps, int)
            or local_search_steps < 0
        ):
            raise invalid_value("local_search_steps", "an integer >= 0", local_search_steps)
        task = SearchTask() if task is None else task
        if not isinstance(task, SearchTask):
            raise invalid_value("task", "a SearchTask", task)
        if kwargs.get("fitness_seeds") is not None:
            import dataclasses

            task = dataclasses.replace(task, fitness_seeds=kwargs["fitness_seeds"])
        space = SymbolicSpace(output_activation)
        self.filters = ExpressionFilters(
            task,
            space,
            sample_size=filter_samples,
            steps=filter_steps,
            rejection=rejection,
            equivalence=equivalence,
        )
        oracle = EvoMALOracle(
            OBJECTIVE,
            max_trials=max_trials,
            generations=generations,
            population_size=population_size,
            crossover_rate=crossover_rate,
            mutation_rate=mutation_rate,
            elitism_rate=elitism_rate,
            prefilter=self.filters.keep if rejection else None,
            equivalence=self.filters if equivalence else None,
            seed=seed,
            max_consecutive_failed_trials=kwargs.pop("max_consecutive_failed_trials", 3),
            trial_timeout=trial_timeout,
        )
        self.local_search_steps = local_search_steps
        super().__init__(
            task, hypermodel=space, oracle=oracle, trial_timeout=trial_timeout, **kwargs
        )
        self.population_size = population_size
        self.settings.update(
            {
                "method": "evomal",
                "generations": generations,
                "population_size": population_size,
                "max_trials": max_trials,
                "seed": oracle.search_seed,
                "operators": oracle.operators,
                "rejection": bool(rejection),
                "equivalence": bool(equivalence),
                "filter_steps": filter_steps,
                "filter_samples": filter_samples,
                "local_search_steps": local_search_steps,
                "output_activation": output_activation,
            }
        )
        for key in ("sigma0", "invariant", "rejected"):
            self.settings.pop(key, None)
        if not self._is_worker():
            write_json_atomically(self.search_directory / "search.json", self.settings)

    # Local search -------------------------------------------------------------------------

    def _local_search_path(self) -> Path:
        return self.search_directory / LOCAL_SEARCH_FILE

    def _tuned(self) -> dict:
        path = self._local_search_path()
        return json.loads(path.read_text()) if path.is_file() else {}

    def _tune_best(self, verbose: int) -> dict:
        """Tunes the edge weights of the best distinct expressions (once; kept on disk)."""
        if not self.local_search_steps:
            return {}
        tuned = self._tuned()
        top = distinct_best(read_search(self.search_directory).trials, self.reevaluate_top or 1)
        from metaloss.training.experiment import build_model

        for trial in top:
            if trial.trial_id in tuned:
                continue
            data = self.task.load_data()
            keras.utils.set_random_seed(self.task.seed)
            model = build_model(self.task.model, data)
            start = self._trial_loss(self.oracle.trials[trial.trial_id], tuned=False)
            result = tune_weights(
                start, model, data.train, steps=self.local_search_steps, seed=self.task.seed
            )
            history = result.result.history.get("meta_loss", [])
            tuned[trial.trial_id] = {
                "expression": start.expression,
                "weights": result.loss.get_weights(),
                "status": result.result.status,
                "improved": result.improved,
                "meta_loss_first": history[0] if history else None,
                "meta_loss_last": history[-1] if history else None,
            }
            write_json_atomically(self._local_search_path(), tuned)
            if verbose:
                print(
                    f"Local search of trial {trial.trial_id}: meta-objective "
                    f"{tuned[trial.trial_id]['meta_loss_first']} -> "
                    f"{tuned[trial.trial_id]['meta_loss_last']}",
                    flush=True,
                )
        return tuned

    def _trial_loss(self, trial, *, tuned: bool = True) -> SymbolicLoss:
        record = self._tuned().get(trial.trial_id) if tuned else None
        # Tuned weights count when the local search finished and lowered its meta-objective;
        # otherwise the expression keeps its unit weights.
        useful = record and record.get("status") == "completed" and record.get("improved")
        weights = record["weights"] if useful else None
        return self.hypermodel.build(trial.hyperparameters, weights=weights)

    def _before_reevaluation(self, verbose: int) -> None:
        self._tune_best(verbose)
