"""A Keras callback that records the loss Hessian's top eigenvalues (and the NTK's) in training.

Dynamical losses change the curvature of the landscape as they evolve; plotting λ_max of the
loss's Hessian every few steps against the edge of stability ``2/η`` shows it. The callback works
under ``model.fit`` and under :meth:`metaloss.training.Trainer.fit`, which both pass Keras
callbacks the model, its optimizer and the batch hooks.

References:
    Ruiz-Garcia, Zhang, Schoenholz, Liu, *Tilting the playing field: Dynamical loss functions for
    machine learning*, arXiv 2102.03793 (ICML 2021).
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from metaloss.analysis.hessian import HVP_METHODS, HessianOperator
from metaloss.losses._base import invalid_value

__all__ = ["HessianTracker", "peaks_per_period"]


def _check_int(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise invalid_value(name, f"an integer >= {minimum}", value)
    return value


class HessianTracker(keras.callbacks.Callback):
    """Records the top Hessian eigenvalues of the training loss every ``every`` optimizer steps.

    Formula: at optimizer step t (``model.optimizer.iterations``), the k largest eigenvalues of
    ``∇²_θ [(1/N) Σ_s ℓ_t(y_s, f(x_s; θ_t)) + R(θ_t)]`` over ``data``, by Lanczos (see
    :func:`metaloss.analysis.hessian.top_eigenvalues`); optionally also the largest eigenvalue
    of the empirical NTK ``Σ_c J_c J_cᵀ`` on ``ntk_inputs``
    (:func:`metaloss.analysis.ntk.empirical_ntk` with ``trace_classes=True``).

    Records are taken once when training begins and after every training batch that leaves the
    optimizer's step count a multiple of ``every`` (a step is recorded once, even over several
    ``fit`` calls). A dynamical loss is measured at the step its ``step`` variable holds then,
    i.e. the step of the update just made. Each record costs one Lanczos run (a few tens of
    Hessian-vector products over ``data``, each about 2-4 gradients) plus, with ``ntk_inputs``,
    one NTK (a Jacobian of ``len(ntk_inputs)·C`` rows). The compiled product is traced once per
    model.

    Args:
        data: ``(x, y)`` arrays or a batched ``tf.data.Dataset`` of ``(x, y)`` to measure on.
        loss: the loss whose Hessian to track. Defaults to `None`: the model's compiled loss
            (``model.loss``; a string is looked up with ``keras.losses.get``).
        every: record every this many optimizer steps. Defaults to `100`.
        k: how many top eigenvalues. Defaults to `1`.
        tol: Lanczos's relative residual tolerance. Defaults to `1e-3`.
        max_iterations: Lanczos's maximum steps. Defaults to `100`.
        seed: seed of Lanczos's starting vector (the same at every record). Defaults to `0`.
        hvp: ``"forward_over_reverse"`` or ``"reverse_over_reverse"``.
            Defaults to `"forward_over_reverse"`.
        include_regularization: add ``model.losses``. Defaults to `True`.
        batch_size: batch size for ``(x, y)`` arrays. Defaults to `None` (up to 1024).
        ntk_inputs: inputs on which to also record the NTK's λ_max. Defaults to `None` (no NTK).

    Attributes:
        steps: the optimizer steps recorded, ``list[int]``.
        eigenvalues: the top-k eigenvalues at each, ``list`` of arrays of shape ``(k,)``,
            descending.
        converged: whether Lanczos met ``tol`` at each, ``list[bool]``.
        hessian_vector_products: products each record used, ``list[int]``.
        ntk_max: the NTK's largest eigenvalue at each (with ``ntk_inputs``), ``list[float]``.

    Example:

    ```python
    loss = metaloss.losses.CyclicClassEmphasis(3, period=200, amplitude=10, from_logits=True)
    tracker = HessianTracker((x, y), every=20)
    Trainer(model, loss, keras.optimizers.SGD(0.5)).fit(full_batch, steps=600,
                                                        callbacks=[tracker])
    json.dumps(tracker.history())   # {"steps": [0, 20, ...], "lambda_max": [0.93, ...], ...}
    ```

    References:
        Ruiz-Garcia, Zhang, Schoenholz, Liu, *Tilting the playing field: Dynamical loss
        functions for machine learning*, arXiv 2102.03793 (ICML 2021). Cohen, Kaur, Li, Kolter,
        Talwalkar, *Gradient Descent on Neural Networks Typically Occurs at the Edge of
        Stability*, arXiv 2103.00065.
    """

    def __init__(
        self,
        data,
        *,
        loss: keras.losses.Loss | Callable | str | None = None,
        every: int = 100,
        k: int = 1,
        tol: float = 1e-3,
        max_iterations: int = 100,
        seed: int = 0,
        hvp: str = "forward_over_reverse",
        include_regularization: bool = True,
        batch_size: int | None = None,
        ntk_inputs=None,
    ) -> None:
        super().__init__()
        if not isinstance(data, tf.data.Dataset) and not (
            isinstance(data, tuple | list) and len(data) == 2
        ):
            raise invalid_value("data", "an (x, y) pair of arrays or a tf.data.Dataset", data)
        if hvp not in HVP_METHODS:
            raise invalid_value("hvp", "one of " + ", ".join(map(repr, HVP_METHODS)), hvp)
        if isinstance(tol, bool) or not isinstance(tol, int | float) or not tol > 0:
            raise invalid_value("tol", "a positive number", tol)
        self.data = data
        self.loss = loss
        self.every = _check_int("every", every)
        self.k = _check_int("k", k)
        self.tol = float(tol)
        self.max_iterations = _check_int("max_iterations", max_iterations)
        self.seed = _check_int("seed", seed, minimum=0)
        self.hvp = hvp
        self.include_regularization = include_regularization
        self.batch_size = batch_size
        self.ntk_inputs = ntk_inputs
        self.steps: list[int] = []
        self.eigenvalues: list[np.ndarray] = []
        self.converged: list[bool] = []
        self.hessian_vector_products: list[int] = []
        self.ntk_max: list[float] = []
        self._operator: HessianOperator | None = None

    def _resolve_loss(self):
        loss = self.loss if self.loss is not None else getattr(self.model, "loss", None)
        if isinstance(loss, str):
            loss = keras.losses.get(loss)
        if loss is None or not callable(loss):
            raise invalid_value(
                "loss", "a loss, or a model compiled with a single loss", type(loss).__name__
            )
        return loss

    def on_train_begin(self, logs=None) -> None:
        if self._operator is None or self._operator.model is not self.model:
            self._operator = HessianOperator(
                self.model,
                self._resolve_loss(),
                self.data,
                hvp=self.hvp,
                include_regularization=self.include_regularization,
                batch_size=self.batch_size,
            )
        self._record()

    def on_train_batch_end(self, batch, logs=None) -> None:
        if self._step() % self.every == 0:
            self._record()

    def _step(self) -> int:
        return int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))

    def _record(self) -> None:
        step = self._step()
        if step in self.steps:
            return
        result = self._operator.top_eigenvalues(
            self.k, "lanczos", tol=self.tol, max_iterations=self.max_iterations, seed=self.seed
        )
        self.steps.append(step)
        self.eigenvalues.append(result.eigenvalues)
        self.converged.append(result.converged)
        self.hessian_vector_products.append(result.hessian_vector_products)
        if self.ntk_inputs is not None:
            from metaloss.analysis.ntk import eigenvalues, empirical_ntk

            kernel = empirical_ntk(self.model, self.ntk_inputs, trace_classes=True)
            self.ntk_max.append(float(eigenvalues(kernel)[0]))

    def history(self) -> dict[str, list]:
        """The records as plain lists, ready for ``json.dumps``.

        Returns:
            ``{"steps", "lambda_max", "eigenvalues" (k per step), "converged",
            "hessian_vector_products"}`` and, with ``ntk_inputs``, ``"ntk_max"``.
        """
        history = {
            "steps": list(self.steps),
            "lambda_max": [float(values[0]) for values in self.eigenvalues],
            "eigenvalues": [[float(v) for v in values] for values in self.eigenvalues],
            "converged": list(self.converged),
            "hessian_vector_products": list(self.hessian_vector_products),
        }
        if self.ntk_inputs is not None:
            history["ntk_max"] = list(self.ntk_max)
        return history


def peaks_per_period(
    history: dict,
    *,
    period: int,
    learning_rate: float,
    num_classes: int | None,
    plain_from: int | None = None,
) -> list[dict]:
    """Per period of a cyclic dynamical loss: the largest recorded λ_max, where, and above 2/η.

    The paper's bifurcation bursts: near the end of each period λ_max of the (weighted) loss rises
    past the edge of stability 2/η and falls back when the emphasised class changes.

    A record at step ``s`` holds the weights after ``s`` updates, measured on the loss of the
    update just made (its step ``s - 1``); so it belongs to period ``(s - 1) // T`` (step 0 to
    period 0) and its position in that period is ``(s - p·T) / T``, in ``(0, 1]``.

    Args:
        history: a :meth:`HessianTracker.history` (``steps``, ``lambda_max``, maybe ``ntk_max``).
        period: T in steps.
        learning_rate: η.
        num_classes: C; period ``p`` emphasises class ``p mod C``. `None` for a loss with no
            emphasis (cross-entropy, summarised over the same windows).
        plain_from: the first period with A = 1 (no emphasis). Defaults to `None`.

    Returns:
        One record per period that has records, in order: ``period``, ``first_step``,
        ``last_step``, ``emphasised_class``, ``records``, ``lambda_max``, ``step``,
        ``fraction`` (position in the period), ``above_edge`` and, with an NTK history,
        ``ntk_max``.

    References:
        Ruiz-Garcia, Zhang, Schoenholz, Liu, *Tilting the playing field: Dynamical loss
        functions for machine learning*, arXiv 2102.03793 (ICML 2021).
    """
    edge = 2.0 / learning_rate
    groups: dict[int, list[int]] = {}
    for index, step in enumerate(history["steps"]):
        groups.setdefault(max(step - 1, 0) // period, []).append(index)
    ntk = history.get("ntk_max") or []
    rows = []
    for number, indices in sorted(groups.items()):
        best = max(indices, key=lambda i: history["lambda_max"][i])
        step = history["steps"][best]
        plain = num_classes is None or (plain_from is not None and number >= plain_from)
        row = {
            "period": number,
            "first_step": number * period,
            "last_step": (number + 1) * period,
            "emphasised_class": None if plain else number % num_classes,
            "records": len(indices),
            "lambda_max": history["lambda_max"][best],
            "step": step,
            "fraction": (step - number * period) / period,
            "above_edge": history["lambda_max"][best] > edge,
        }
        if ntk:
            row["ntk_max"] = max(ntk[i] for i in indices)
        rows.append(row)
    return rows
