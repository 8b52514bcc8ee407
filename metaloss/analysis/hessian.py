"""The Hessian of a training loss over a dataset: products, top eigenvalues, trace and density.

Everything is built on Hessian-vector products ``v ↦ H v`` of the mean training loss (plus the
model's regularisation), never on the ``P × P`` matrix itself, so it scales to networks with
millions of parameters. The vector algebra (Lanczos, power iteration, Hutchinson, stochastic
Lanczos quadrature; the Krylov methods live in :mod:`metaloss.analysis._krylov`, as functions of
any ``matvec``) runs on the host in float64 NumPy; each product is a compiled TensorFlow
function of the current weights, so an operator built once follows the model as it trains, and a
dynamical loss is seen at whatever step its ``step`` variable holds when the product runs.

References:
    Yao, Gholami, Keutzer, Mahoney, *PyHessian: Neural Networks Through the Lens of the Hessian*,
    arXiv 1912.07145.
    Ghorbani, Krishnan, Xiao, *An Investigation into Neural Net Optimization via Hessian
    Eigenvalue Density*, arXiv 1901.10159.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from metaloss.analysis._krylov import lanczos_quadrature, lanczos_top, power_top
from metaloss.losses._base import invalid_value

__all__ = [
    "DensityResult",
    "EigenResult",
    "HessianOperator",
    "TraceResult",
    "dense_hessian",
    "density",
    "top_eigenvalues",
    "trace",
]

HVP_METHODS = ("forward_over_reverse", "reverse_over_reverse")
EIGEN_METHODS = ("lanczos", "power")
TRACE_METHODS = ("hutchinson", "exact")
_MEAN_REDUCTIONS = ("sum_over_batch_size", "mean", "mean_with_sample_weight")
_DEFAULT_BATCH_SIZE = 1024
_ZERO = tf.UnconnectedGradients.ZERO


def _positive_int(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise invalid_value(name, f"an integer >= {minimum}", value)
    return int(value)


def _positive_float(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise invalid_value(name, "a positive number", value)
    return float(value)


def _choice(name: str, value, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise invalid_value(name, "one of " + ", ".join(repr(c) for c in choices), value)
    return value


class HessianOperator:
    """The Hessian of a model's mean training loss over a dataset, as a linear operator.

    Formula (N samples in batches B_b of n_b samples, per-sample loss ℓ, regularisation R):

    ```
    L(θ) = (1/N) Σ_s ℓ(y_s, f(x_s; θ)) + R(θ) = Σ_b (n_b/N) [mean_{s∈B_b} ℓ_s + R(θ)]
    H v  = Σ_b (n_b/N) ∇²[mean_{s∈B_b} ℓ_s + R] v
    ```

    The model runs with ``training=False``. A Keras ``Loss`` with a mean reduction is the batch
    mean; with ``reduction="sum"`` it is divided by the batch size; per-sample values
    (``reduction=None`` or a plain callable) are averaged, as :class:`metaloss.training.Trainer`
    does. Each product is a ``tf.function(reduce_retracing=True)`` of the current weights and
    of the vector (passed as tensors), so the operator stays valid as the model trains and a
    dynamical loss's ``step`` variable is read when the product runs.

    Args:
        model: a built ``keras.Model`` (TensorFlow backend) with trainable variables.
        loss: a ``keras.losses.Loss`` (a metaloss zoo loss included) or a callable
            ``(y_true, y_pred)`` returning per-sample values.
        data: ``(x, y)`` arrays, batched here, or a batched ``tf.data.Dataset`` of ``(x, y)``
            (finite, and the same samples on every pass).
        hvp: ``"forward_over_reverse"`` (a ``tf.autodiff.ForwardAccumulator`` around a
            ``GradientTape``: one gradient pushed forward) or ``"reverse_over_reverse"`` (the
            gradient of ``<∇L, v>``: a second backward pass, more memory). Both cost about 2
            gradients on an MNIST-1D MLP (BENCHMARKS.md); they agree to float tolerance.
            Defaults to `"forward_over_reverse"`.
        include_regularization: add ``model.losses`` to the loss. Defaults to `True`.
        batch_size: batch size for ``(x, y)`` arrays (ignored for a dataset). Defaults to
            `None` (1024, or the whole set when smaller).

    Attributes:
        num_parameters: P, the number of trainable scalars.
        products: Hessian-vector products computed so far (one per pass over the data).
        on_product: called with no argument after every product (e.g. to advance a progress
            bar), or `None`. Defaults to `None`.

    Example:

    >>> # L(w) = mean((w x - y)²) over x = 1, 2, 3: H = 2·mean(x²) = 28/3.
    >>> model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, use_bias=False)])
    >>> data = ([[1.], [2.], [3.]], [[0.]] * 3)
    >>> op = HessianOperator(model, keras.losses.MeanSquaredError(), data)
    >>> round(float(op.matvec(np.ones(1))[0]), 3)
    9.333

    References:
        Pearlmutter, *Fast Exact Multiplication by the Hessian*, Neural Computation 6(1), 1994.
    """

    def __init__(
        self,
        model: keras.Model,
        loss: keras.losses.Loss | Callable,
        data,
        *,
        hvp: str = "forward_over_reverse",
        include_regularization: bool = True,
        batch_size: int | None = None,
    ) -> None:
        if not isinstance(model, keras.Model):
            raise invalid_value("model", "a keras.Model", type(model).__name__)
        self.model = model
        self.variables = list(model.trainable_variables)
        if not self.variables:
            raise invalid_value("model", "a built keras.Model with trainable variables", model.name)
        if not callable(loss):
            raise invalid_value("loss", "a keras.losses.Loss or a callable (y_true, y_pred)", loss)
        self.loss = loss
        self.hvp = _choice("hvp", hvp, HVP_METHODS)
        if not isinstance(include_regularization, bool):
            raise invalid_value("include_regularization", "a bool", include_regularization)
        self.include_regularization = include_regularization
        if batch_size is not None:
            batch_size = _positive_int("batch_size", batch_size)
        self._data = _batches(data, batch_size, model)
        self._shapes = [tuple(v.shape) for v in self.variables]
        self._sizes = [math.prod(shape) for shape in self._shapes]
        self._offsets = np.cumsum([0, *self._sizes])
        self.num_parameters = int(self._offsets[-1])
        self.products = 0
        self.on_product: Callable[[], object] | None = None
        product = (
            self._forward_over_reverse if hvp == HVP_METHODS[0] else self._reverse_over_reverse
        )
        self._product = tf.function(product, reduce_retracing=True)
        self._gradient = tf.function(self._batch_gradient, reduce_retracing=True)

    # Compiled per-batch computations -------------------------------------------------------

    def _objective(self, x, y):
        """The batch's mean loss (plus regularisation) as a float64 scalar, and the batch size."""
        y_pred = self.model(x, training=False)
        value = self.loss(y, y_pred)
        count = tf.shape(tf.nest.flatten(y_pred)[0])[0]
        reduction = getattr(self.loss, "reduction", None)
        if isinstance(self.loss, keras.losses.Loss) and reduction in _MEAN_REDUCTIONS:
            mean = tf.cast(value, tf.float64)
        elif isinstance(self.loss, keras.losses.Loss) and reduction == "sum":
            mean = tf.cast(value, tf.float64) / tf.cast(count, tf.float64)
        else:
            mean = tf.reduce_mean(tf.cast(value, tf.float64))
        if self.include_regularization and self.model.losses:
            mean += tf.add_n([tf.cast(term, tf.float64) for term in self.model.losses])
        return mean, count

    def _batch_gradient(self, x, y):
        with tf.GradientTape() as tape:
            value, count = self._objective(x, y)
        gradients = tape.gradient(value, self.variables, unconnected_gradients=_ZERO)
        return gradients, count

    def _forward_over_reverse(self, x, y, tangents):
        # Keras 3 variables are not tensors to ForwardAccumulator: watch the tf.Variable inside.
        primals = [v.value for v in self.variables]
        with tf.autodiff.ForwardAccumulator(primals, tangents) as accumulator:
            gradients, count = self._batch_gradient(x, y)
        products = [accumulator.jvp(g, unconnected_gradients=_ZERO) for g in gradients]
        return products, count

    def _reverse_over_reverse(self, x, y, tangents):
        with tf.GradientTape() as tape:
            gradients, count = self._batch_gradient(x, y)
            inner = tf.add_n(
                [
                    tf.reduce_sum(g * tf.cast(t, g.dtype))
                    for g, t in zip(gradients, tangents, strict=True)
                ]
            )
        return tape.gradient(inner, self.variables, unconnected_gradients=_ZERO), count

    # Host-side operator -------------------------------------------------------------------

    def _accumulate(self, compute) -> np.ndarray:
        """Σ_b (n_b/N) compute(x_b, y_b), flattened to float64."""
        totals = [tf.zeros(shape, tf.float64) for shape in self._shapes]
        samples = 0
        for x, y in self._data():
            parts, count = compute(x, y)
            count = int(count)
            samples += count
            totals = [
                t + tf.cast(p, tf.float64) * count for t, p in zip(totals, parts, strict=True)
            ]
        if samples == 0:
            raise invalid_value("data", "at least one sample", "an empty dataset")
        return np.concatenate([t.numpy().reshape(-1) for t in totals]) / samples

    def split(self, vector: np.ndarray) -> list[np.ndarray]:
        """A flat length-P vector as a list of arrays shaped like the trainable variables."""
        vector = np.asarray(vector, dtype=np.float64)
        if vector.shape != (self.num_parameters,):
            raise invalid_value(
                "vector", f"a vector of shape ({self.num_parameters},)", vector.shape
            )
        return [
            vector[start:stop].reshape(shape)
            for start, stop, shape in zip(
                self._offsets[:-1], self._offsets[1:], self._shapes, strict=True
            )
        ]

    def matvec(self, vector: np.ndarray) -> np.ndarray:
        """``H v`` for a flat float64 vector ``v`` of length P; returns shape ``(P,)``, float64."""
        tangents = [
            tf.convert_to_tensor(part, dtype=variable.dtype)
            for part, variable in zip(self.split(vector), self.variables, strict=True)
        ]
        result = self._accumulate(lambda x, y: self._product(x, y, tangents))
        self.products += 1
        if self.on_product is not None:
            self.on_product()
        return result

    def gradient(self) -> np.ndarray:
        """The gradient ``∇L`` of the same loss, flattened; shape ``(P,)``, float64."""
        return self._accumulate(self._gradient)

    # Spectral analyses on this operator (one compiled product, traced once) ----------------

    def top_eigenvalues(
        self,
        k: int = 1,
        method: str = "lanczos",
        *,
        tol: float = 1e-4,
        max_iterations: int = 100,
        seed: int = 0,
        return_eigenvectors: bool = False,
    ) -> EigenResult:
        """:func:`top_eigenvalues` of this operator; see there for the arguments."""
        method = _choice("method", method, EIGEN_METHODS)
        tol = _positive_float("tol", tol)
        max_iterations = _positive_int("max_iterations", max_iterations)
        k = _positive_int("k", k)
        seed = _positive_int("seed", seed, minimum=0)
        if k > self.num_parameters:
            raise invalid_value("k", f"at most the {self.num_parameters} parameters", k)
        start = self.products
        solve = lanczos_top if method == "lanczos" else power_top
        values, vectors, converged = solve(
            self.matvec,
            self.num_parameters,
            k,
            tol=tol,
            max_iterations=max_iterations,
            rng=np.random.default_rng(seed),
        )
        return EigenResult(
            eigenvalues=np.asarray(values, dtype=np.float64),
            eigenvectors=vectors if return_eigenvectors else None,
            hessian_vector_products=self.products - start,
            converged=bool(converged),
            method=method,
        )

    def trace(
        self, samples: int = 100, *, seed: int = 0, method: str = "hutchinson"
    ) -> TraceResult:
        """:func:`trace` of this operator; see there for the arguments."""
        method = _choice("method", method, TRACE_METHODS)
        samples = _positive_int("samples", samples, minimum=2)
        seed = _positive_int("seed", seed, minimum=0)
        start, size = self.products, self.num_parameters
        if method == "exact":
            identity = np.eye(size)
            total = sum(float(self.matvec(identity[i])[i]) for i in range(size))
            return TraceResult(total, 0.0, self.products - start, method)
        rng = np.random.default_rng(seed)
        values = []
        for _ in range(samples):
            v = rng.choice([-1.0, 1.0], size=size)
            values.append(float(v @ self.matvec(v)))
        error = float(np.std(values, ddof=1) / math.sqrt(samples))
        return TraceResult(float(np.mean(values)), error, self.products - start, method)

    def density(self, runs: int = 1, steps: int = 100, *, seed: int = 0) -> DensityResult:
        """:func:`density` of this operator; see there for the arguments."""
        runs = _positive_int("runs", runs)
        steps = _positive_int("steps", steps)
        seed = _positive_int("seed", seed, minimum=0)
        start = self.products
        nodes, weights = lanczos_quadrature(
            self.matvec,
            self.num_parameters,
            runs=runs,
            steps=steps,
            rng=np.random.default_rng(seed),
        )
        return DensityResult(nodes, weights, runs, self.products - start)


def _batches(data, batch_size: int | None, model: keras.Model) -> Callable:
    """A function returning an iterator over ``(x, y)`` batches of ``data``."""
    if isinstance(data, tf.data.Dataset):
        spec = data.element_spec
        if not isinstance(spec, tuple | list) or len(spec) != 2:
            raise invalid_value("data", "a tf.data.Dataset of (x, y) pairs", spec)
        if data.cardinality() == tf.data.INFINITE_CARDINALITY:
            raise invalid_value("data", "a finite tf.data.Dataset (no .repeat())", data)
        try:  # a subclassed model has no symbolic inputs to compare with
            inputs = list(model.inputs or [])
        except (AttributeError, ValueError):
            inputs = []
        x_spec = spec[0]
        if (
            len(inputs) == 1
            and isinstance(x_spec, tf.TensorSpec)
            and x_spec.shape.rank is not None
            and x_spec.shape.rank == len(inputs[0].shape) - 1
        ):
            raise invalid_value("data", "a batched tf.data.Dataset (call .batch())", spec)
        return lambda: iter(data)
    if not isinstance(data, tuple | list) or len(data) != 2:
        raise invalid_value("data", "an (x, y) pair of arrays or a tf.data.Dataset", type(data))
    try:
        x, y = (np.asarray(part) for part in data)
    except (TypeError, ValueError) as error:
        raise invalid_value("data", "an (x, y) pair of arrays", str(error)) from None
    if x.ndim == 0 or y.ndim == 0 or len(x) != len(y) or len(x) == 0:
        raise invalid_value(
            "data", "x and y with the same number (>= 1) of samples", (x.shape, y.shape)
        )
    size = min(batch_size or _DEFAULT_BATCH_SIZE, len(x))
    batches = [
        (tf.convert_to_tensor(x[i : i + size]), tf.convert_to_tensor(y[i : i + size]))
        for i in range(0, len(x), size)
    ]
    return lambda: iter(batches)


def dense_hessian(
    model: keras.Model,
    loss: keras.losses.Loss | Callable,
    data,
    *,
    hvp: str = "forward_over_reverse",
    include_regularization: bool = True,
    batch_size: int | None = None,
    max_parameters: int = 5000,
) -> np.ndarray:
    """The full Hessian of a small model's training loss, from P products with unit vectors.

    Formula: ``H[:, i] = H e_i``, then symmetrised, ``(H + Hᵀ)/2``. Costs P products and
    ``8P²`` bytes: meant for tests and toy models.

    Args:
        model, loss, data, hvp, include_regularization, batch_size: as for
            :class:`HessianOperator`.
        max_parameters: refuse models with more trainable scalars than this.
            Defaults to `5000`.

    Returns:
        The Hessian, shape ``(P, P)``, float64, ordered like ``model.trainable_variables``
        flattened one after the other.

    Example:

    >>> model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, use_bias=False)])
    >>> dense_hessian(model, keras.losses.MeanSquaredError(), ([[1.], [2.], [3.]], [[0.]] * 3))
    array([[9.33333397]])

    References:
        Pearlmutter, *Fast Exact Multiplication by the Hessian*, Neural Computation 6(1), 1994.
    """
    max_parameters = _positive_int("max_parameters", max_parameters)
    operator = HessianOperator(
        model,
        loss,
        data,
        hvp=hvp,
        include_regularization=include_regularization,
        batch_size=batch_size,
    )
    size = operator.num_parameters
    if size > max_parameters:
        raise invalid_value(
            "model", f"at most max_parameters={max_parameters} trainable parameters", size
        )
    identity = np.eye(size)
    hessian = np.stack([operator.matvec(identity[i]) for i in range(size)], axis=1)
    return (hessian + hessian.T) / 2


@dataclass(frozen=True, eq=False)
class EigenResult:
    """The algebraically largest eigenvalues of a Hessian.

    Attributes:
        eigenvalues: shape ``(k,)``, descending.
        eigenvectors: unit eigenvectors as columns, shape ``(P, k)``, or `None` unless asked for.
        hessian_vector_products: products the method used.
        converged: whether every eigenvalue met the tolerance within ``max_iterations``.
        method: ``"lanczos"`` or ``"power"``.
    """

    eigenvalues: np.ndarray
    eigenvectors: np.ndarray | None
    hessian_vector_products: int
    converged: bool
    method: str


@dataclass(frozen=True)
class TraceResult:
    """A Hessian trace estimate.

    Attributes:
        trace: the estimate of ``tr H``.
        standard_error: its standard error (0 for the exact method).
        hessian_vector_products: products used.
        method: ``"hutchinson"`` or ``"exact"``.
    """

    trace: float
    standard_error: float
    hessian_vector_products: int
    method: str


@dataclass(frozen=True, eq=False)
class DensityResult:
    """A Hessian eigenvalue density from stochastic Lanczos quadrature.

    Attributes:
        nodes: quadrature nodes (Ritz values) of every run, concatenated, shape ``(M,)``.
        weights: their weights, shape ``(M,)``, non-negative and summing to 1.
        runs: the number of random starting vectors averaged.
        hessian_vector_products: products used.
    """

    nodes: np.ndarray
    weights: np.ndarray
    runs: int
    hessian_vector_products: int

    @property
    def mean(self) -> float:
        """The density's mean, ``Σ w_i θ_i``: an estimate of ``tr H / P``."""
        return float(np.dot(self.weights, self.nodes))

    def curve(self, grid, sigma: float) -> np.ndarray:
        """The Gaussian-smoothed density ``φ(t) = Σ_i w_i N(t; θ_i, σ²)`` on ``grid``.

        Args:
            grid: points t, any shape.
            sigma: the Gaussian's standard deviation, in eigenvalue units.

        Returns:
            ``φ`` at ``grid``, same shape, float64; it integrates to 1 over the real line.
        """
        sigma = _positive_float("sigma", sigma)
        grid = np.asarray(grid, dtype=np.float64)
        z = (grid[..., None] - self.nodes) / sigma
        return np.exp(-0.5 * z**2) @ self.weights / (sigma * math.sqrt(2 * math.pi))


def _operator(model, loss, data, hvp, include_regularization, batch_size) -> HessianOperator:
    return HessianOperator(
        model,
        loss,
        data,
        hvp=hvp,
        include_regularization=include_regularization,
        batch_size=batch_size,
    )


def top_eigenvalues(
    model: keras.Model,
    loss: keras.losses.Loss | Callable,
    data,
    k: int = 1,
    method: str = "lanczos",
    *,
    tol: float = 1e-4,
    max_iterations: int = 100,
    seed: int = 0,
    hvp: str = "forward_over_reverse",
    include_regularization: bool = True,
    batch_size: int | None = None,
    return_eigenvectors: bool = False,
) -> EigenResult:
    """The ``k`` algebraically largest eigenvalues of the training loss's Hessian.

    Formula: ``H u_i = λ_i u_i`` with ``λ_1 ≥ λ_2 ≥ … ≥ λ_k`` the largest of all P eigenvalues,
    found from Hessian-vector products only.

    Args:
        model: a built ``keras.Model``.
        loss: a ``keras.losses.Loss`` or a per-sample callable ``(y_true, y_pred)``.
        data: ``(x, y)`` arrays or a batched ``tf.data.Dataset`` of ``(x, y)``.
        k: how many eigenvalues. Defaults to `1`.
        method: ``"lanczos"``: one Krylov space, fully re-orthogonalised in float64, whose
            tridiagonal ``T`` is diagonalised after every product; stops when every top-k Ritz
            value θ has residual bound ``|β_m s_m| < tol·|θ|``. Costs one product per step,
            typically a few tens of steps (never more than P), plus ``8·m·P`` bytes of host
            memory for m steps; on a breakdown (an invariant Krylov space) it restarts in the
            orthogonal complement. A single Krylov space holds one copy of a repeated
            eigenvalue: further copies are found only after such a breakdown, so a top-k
            with a repeated eigenvalue can skip its copies (power iteration finds them).
            ``"power"``:
            PyHessian's power iteration (Rayleigh quotient, stop when it changes by less than
            ``tol`` relatively), one eigenvalue at a time with deflation against those found.
            Costs one product per iteration, usually hundreds in all for k = 5 at the same
            ``tol``; whenever the dominant eigenvalue of the deflated Hessian is negative it
            runs again on ``H - λI`` to reach the algebraically largest one, doubling that
            eigenvalue's cost. When eigenvalues of opposite signs have nearly equal magnitudes
            it converges slowly and can stop early on an inaccurate value; Lanczos does not
            have that weakness. Defaults to `"lanczos"`.
        tol: the relative tolerance above. Defaults to `1e-4`.
        max_iterations: Lanczos steps (at least k, at most P), or power iterations per
            eigenvalue (and per shifted run). Defaults to `100`.
        seed: seed of the random starting vectors. Defaults to `0`.
        hvp: how products are computed, see :class:`HessianOperator`.
            Defaults to `"forward_over_reverse"`.
        include_regularization: add ``model.losses``. Defaults to `True`.
        batch_size: batch size for ``(x, y)`` arrays. Defaults to `None` (up to 1024).
        return_eigenvectors: also return the eigenvectors. Defaults to `False`.

    Returns:
        An :class:`EigenResult`: ``eigenvalues`` of shape ``(k,)``, descending; ``eigenvectors``
        of shape ``(P, k)`` when asked for.

    Example:

    >>> # L(w) = mean((w x - y)²) over x = 1, 2, 3 has the single eigenvalue 2·mean(x²).
    >>> model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, use_bias=False)])
    >>> data = ([[1.], [2.], [3.]], [[0.]] * 3)
    >>> result = top_eigenvalues(model, keras.losses.MeanSquaredError(), data)
    >>> round(float(result.eigenvalues[0]), 3), result.hessian_vector_products
    (9.333, 1)

    References:
        Yao, Gholami, Keutzer, Mahoney, *PyHessian: Neural Networks Through the Lens of the
        Hessian*, arXiv 1912.07145. Golub & Van Loan, *Matrix Computations*, §10.1.
    """
    operator = _operator(model, loss, data, hvp, include_regularization, batch_size)
    return operator.top_eigenvalues(
        k,
        method,
        tol=tol,
        max_iterations=max_iterations,
        seed=seed,
        return_eigenvectors=return_eigenvectors,
    )


def trace(
    model: keras.Model,
    loss: keras.losses.Loss | Callable,
    data,
    *,
    samples: int = 100,
    seed: int = 0,
    method: str = "hutchinson",
    hvp: str = "forward_over_reverse",
    include_regularization: bool = True,
    batch_size: int | None = None,
) -> TraceResult:
    """The trace of the training loss's Hessian (the sum of its eigenvalues).

    Formula (Hutchinson, Rademacher ``v`` with independent ±1 entries, so ``E[v vᵀ] = I``):

    ```
    tr H = E[vᵀ H v] ≈ (1/S) Σ_s v_sᵀ H v_s,     standard error = std_s(v_sᵀ H v_s) / √S
    ```

    Args:
        model, loss, data, hvp, include_regularization, batch_size: as for
            :func:`top_eigenvalues`.
        samples: Hutchinson probes S (at least 2). Defaults to `100`.
        seed: seed of the probes. Defaults to `0`.
        method: ``"hutchinson"`` (S products, unbiased, error ∝ 1/√S) or ``"exact"``
            (``Σ_i e_iᵀ H e_i``: P products, for small models). Defaults to `"hutchinson"`.

    Returns:
        A :class:`TraceResult`.

    Example:

    >>> model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, use_bias=False)])
    >>> data = ([[1.], [2.], [3.]], [[0.]] * 3)
    >>> round(trace(model, keras.losses.MeanSquaredError(), data, samples=4).trace, 3)
    9.333

    References:
        Hutchinson, *A stochastic estimator of the trace of the influence matrix for Laplacian
        smoothing splines*, Communications in Statistics 18(3), 1989. Yao et al., *PyHessian*,
        arXiv 1912.07145.
    """
    operator = _operator(model, loss, data, hvp, include_regularization, batch_size)
    return operator.trace(samples=samples, seed=seed, method=method)


def density(
    model: keras.Model,
    loss: keras.losses.Loss | Callable,
    data,
    *,
    runs: int = 1,
    steps: int = 100,
    seed: int = 0,
    hvp: str = "forward_over_reverse",
    include_regularization: bool = True,
    batch_size: int | None = None,
) -> DensityResult:
    """The eigenvalue density of the training loss's Hessian by stochastic Lanczos quadrature.

    Formula (for each run, ``m`` Lanczos steps from a random unit vector ``q``, ``T = S Θ Sᵀ``):

    ```
    φ(t) = (1/P) Σ_i δ(t - λ_i) ≈ (1/R) Σ_runs Σ_j S[0, j]² δ(t - Θ_j)
    ```

    The nodes are the eigenvalues of T, the weights the squared first components of its
    eigenvectors, averaged over runs; :meth:`DensityResult.curve` smooths them with a Gaussian.

    Args:
        model, loss, data, hvp, include_regularization, batch_size: as for
            :func:`top_eigenvalues`.
        runs: random starting vectors R (Rademacher, normalised). Defaults to `1`.
        steps: Lanczos steps m per run (at most P; one product each, fully re-orthogonalised,
            ``8·m·P`` bytes of host memory). Defaults to `100`.
        seed: seed of the starting vectors. Defaults to `0`.

    Returns:
        A :class:`DensityResult` with ``R·m`` nodes and weights (fewer if a run spans an
        invariant subspace early).

    Example:

    >>> model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, use_bias=False)])
    >>> data = ([[1.], [2.], [3.]], [[0.]] * 3)
    >>> result = density(model, keras.losses.MeanSquaredError(), data)
    >>> [round(float(v), 3) for v in (*result.nodes, *result.weights)]
    [9.333, 1.0]

    References:
        Ghorbani, Krishnan, Xiao, *An Investigation into Neural Net Optimization via Hessian
        Eigenvalue Density*, arXiv 1901.10159. Yao et al., *PyHessian*, arXiv 1912.07145.
    """
    operator = _operator(model, loss, data, hvp, include_regularization, batch_size)
    return operator.density(runs=runs, steps=steps, seed=seed)
