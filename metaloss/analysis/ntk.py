"""Empirical neural tangent kernel of a classifier's logits, and its spectrum.

For a model ``f(x; θ)`` with ``C`` logits and ``P`` trainable parameters, the empirical NTK on a
batch ``x_1..x_N`` is the Gram matrix of the per-sample, per-class parameter gradients,
``Θ = J Jᵀ`` with ``J`` the ``(N·C × P)`` Jacobian of the logits. Its spectrum governs gradient
descent on the logits near the current parameters: ``Δf ≈ -η Θ ∇_f L``.

References:
    Jacot, Gabriel & Hongler, *Neural Tangent Kernel: Convergence and Generalization in Neural
    Networks*, arXiv:1806.07572.
    Novak, Sohl-Dickstein & Schoenholz, *Fast Finite Width Neural Tangent Kernel*,
    arXiv:2206.08720.
"""

from __future__ import annotations

import contextlib
import logging
import math
import numbers
import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import tensorflow as tf

from metaloss.losses._base import invalid_value

if TYPE_CHECKING:
    import keras

__all__ = ["METHODS", "condition_number", "eigenvalues", "empirical_ntk", "ntk_summary"]

METHODS: tuple[str, ...] = ("jacobian", "loop")
"""The algorithms :func:`empirical_ntk` accepts as ``method``."""

# With `chunk_size=None`, a chunk holds as many samples as keep one chunk's Jacobian (C·P values
# per sample) under this many bytes.
_CHUNK_BYTES = 256 * 2**20

# Relative asymmetry tolerated by `eigenvalues` (kernels computed in float32 are symmetric only to
# float32 round-off).
_SYMMETRY_RTOL = 1e-5


class _Described:
    """A value whose ``repr`` is a short description (an array's shape, not its contents)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _describe(value: Any) -> _Described:
    shape = getattr(value, "shape", None)
    if shape is None:
        return _Described(f"<{type(value).__name__}>")
    dtype = getattr(value, "dtype", None)
    dtype = getattr(dtype, "name", dtype)
    return _Described(f"<array of shape {tuple(shape)} and dtype {dtype}>")


def empirical_ntk(
    model: keras.Model,
    x: Any,
    *,
    trace_classes: bool = True,
    method: str = "jacobian",
    chunk_size: int | None = None,
    training: bool = False,
) -> np.ndarray:
    """The empirical neural tangent kernel of a model's logits on a batch of inputs.

    Each sample is fed to the model on its own, so the kernel of a sample does not depend on
    which other samples share its chunk (with ``training=False``).

    Formula:

    ```
    J[i·C + c, p] = ∂f_c(x_i) / ∂θ_p                              (N·C × P)
    Θ = J Jᵀ:  Θ[i·C + c, j·C + d] = ⟨∂f_c(x_i)/∂θ, ∂f_d(x_j)/∂θ⟩  (N·C × N·C)
    K[i, j] = Σ_c Θ[i·C + c, j·C + c]                              (N × N, traced)
    ```

    with ``f`` the logits, ``C`` their number and ``θ`` all trainable parameters of the model.

    Args:
        model: A Keras model mapping a batch of inputs to logits of shape ``(batch, C)``, e.g.
            one from :func:`metaloss.models.get`. Its trainable weights are the parameters ``θ``.
        x: The ``N`` inputs: an array or tensor of shape ``(N, *input_shape)`` with ``N >= 1``.
        trace_classes: Whether to return the ``N × N`` kernel traced over classes (``K``)
            rather than the full ``N·C × N·C`` kernel ``Θ``, whose rows and columns are ordered
            sample-major (index ``i·C + c``). Defaults to `True`.
        method: How to compute the Jacobian. Defaults to ``"jacobian"``.

            - ``"jacobian"``: vectorised. Per chunk of ``chunk_size`` samples, one compiled
              ``tf.vectorized_map`` over the samples of a ``GradientTape.jacobian`` (pfor over
              the classes) gives the chunk's Jacobian; kernel blocks are the per-variable
              products ``J_a J_bᵀ``, summed in float64. A row chunk's Jacobian is computed once
              and reused along its row of blocks; the column chunks right of the diagonal are
              recomputed, so with ``n = ⌈N / chunk_size⌉`` chunks it costs ``n(n + 1)/2``
              vectorised Jacobian evaluations of ``chunk_size`` samples (one when the whole
              batch is one chunk) plus the products, ``N²·C·P`` multiply-adds traced and
              ``N²·C²·P`` full (about half of that when ``n`` is large, by symmetry). Peak
              memory is bounded by the chunk size, not by ``N``: at most two chunk Jacobians
              of ``chunk_size·C·P`` values (in the weights' dtype) are alive at once, plus the
              vectorised backward pass's intermediates (about ``chunk_size·C`` copies of one
              sample's activations) and the float64 result. (For convolutions, TensorFlow's
              pfor loops over the samples inside the graph to get per-sample filter gradients;
              its "Conv2DBackpropFilter uses a while_loop" notice is silenced.)
            - ``"loop"``: the per-sample reference, for checks. One eager
              ``GradientTape.gradient`` per (sample, class), ``N·C`` backward passes with
              Python overhead each, then the Gram matrix in float64 NumPy. On a 2-core CPU it
              is about 20x slower than ``"jacobian"`` for the traced kernel of the default
              ``"mlp"`` at ``N = 256``, and about 4x for the full kernel, where the ``N²·C²·P``
              Gram product both methods share dominates. It holds the whole Jacobian in float64
              (``N·C·P`` values) and ignores ``chunk_size``.
        chunk_size: Number of samples per chunk for ``method="jacobian"`` (a positive integer;
            larger is faster and uses more memory, see ``method``). Defaults to `None`: chunks
            as large as keep one chunk's Jacobian under 256 MiB, balanced to equal sizes.
        training: Whether to run the model in training mode. Defaults to `False` (inference:
            BatchNorm uses its moving statistics, Dropout is off), the kernel of the network as
            it is. Training mode is meaningful only for layers that act on each sample alone:
            every sample is fed alone, so BatchNorm would normalise over one sample (and update
            its moving statistics), and Dropout makes the kernel random.

    Returns:
        A float64 NumPy array: the ``(N, N)`` traced kernel, or the ``(N·C, N·C)`` full kernel
        when ``trace_classes=False``. It is symmetric positive semi-definite (up to round-off
        in the weights' dtype).

    Raises:
        ValueError: If ``model`` has no trainable weights or does not output ``(batch, C)``
            logits, ``x`` is empty, non-finite or not shaped like the model's input, or
            ``method`` or ``chunk_size`` is invalid.

    Example:

    >>> # f(x) = W x + b with C = 2 outputs: K[i, j] = C·(x_i·x_j + 1), by hand.
    >>> inputs = keras.Input((3,), dtype="float64")
    >>> model = keras.Model(inputs, keras.layers.Dense(2, dtype="float64")(inputs))
    >>> empirical_ntk(model, [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    array([[4., 2.],
           [2., 4.]])

    References:
        - Jacot, Gabriel & Hongler, *Neural Tangent Kernel: Convergence and Generalization in
          Neural Networks*, arXiv:1806.07572.
        - Novak, Sohl-Dickstein & Schoenholz, *Fast Finite Width Neural Tangent Kernel*,
          arXiv:2206.08720 (the Jacobian-contraction method).
    """
    if not isinstance(trace_classes, bool):
        raise invalid_value("trace_classes", "a boolean", trace_classes)
    if not isinstance(training, bool):
        raise invalid_value("training", "a boolean", training)
    if not isinstance(method, str) or method not in METHODS:
        raise invalid_value("method", f"one of {list(METHODS)}", method)
    if chunk_size is not None and (
        not isinstance(chunk_size, numbers.Integral)
        or isinstance(chunk_size, bool)
        or chunk_size < 1
    ):
        raise invalid_value("chunk_size", "a positive integer or None", chunk_size)
    x = _inputs(model, x)
    variables, num_classes = _parameters(model, x)
    if method == "loop":
        return _loop_ntk(model, x, variables, num_classes, trace_classes, training)
    num_samples = int(x.shape[0])
    if chunk_size is None:
        chunk_size = _auto_chunk_size(variables, num_classes, num_samples)
    return _vectorised_ntk(
        model, x, variables, num_classes, trace_classes, training, int(chunk_size)
    )


def _inputs(model: Any, x: Any) -> tf.Tensor:
    """Validates ``x`` and returns it as a tensor of the model's input dtype."""
    try:
        tensor = x if isinstance(x, tf.Tensor) else tf.convert_to_tensor(np.asarray(x))
    except (TypeError, ValueError):
        raise invalid_value(
            "x", "an array of inputs of shape (N, *input_shape)", _describe(x)
        ) from None
    if not (tensor.dtype.is_floating or tensor.dtype.is_integer or tensor.dtype.is_bool):
        raise invalid_value("x", "a numeric array of inputs", _describe(tensor))
    try:
        expected = tuple(model.input_shape[1:])
    except (AttributeError, TypeError, ValueError):  # not built, or several inputs
        expected = None
    if expected is not None and not all(isinstance(size, (int, type(None))) for size in expected):
        expected = None  # several inputs: left for the model to reject
    shape = tuple(tensor.shape)
    wrong_shape = len(shape) < 2 or 0 in shape
    if expected is not None:
        wrong_shape = wrong_shape or len(shape) != len(expected) + 1
        wrong_shape = wrong_shape or any(
            size is not None and size != actual
            for size, actual in zip(expected, shape[1:], strict=False)
        )
    if wrong_shape:
        features = "*input_shape" if expected is None else ", ".join(map(str, expected))
        features = features.replace("None", "any")
        raise invalid_value(
            "x", f"a non-empty batch of inputs of shape (N, {features})", _describe(tensor)
        )
    model_inputs = getattr(model, "inputs", None)
    if model_inputs:
        dtype = tf.as_dtype(model_inputs[0].dtype)
    elif tensor.dtype.is_floating:
        dtype = tensor.dtype
    else:
        dtype = tf.as_dtype(_floatx())
    tensor = tf.cast(tensor, dtype)
    if dtype.is_floating and not bool(tf.reduce_all(tf.math.is_finite(tensor))):
        raise invalid_value("x", "finite inputs", _describe(tensor))
    return tensor


def _floatx() -> str:
    import keras

    return keras.config.floatx()


def _parameters(model: Any, x: tf.Tensor) -> tuple[list[tf.Variable], int]:
    """Builds the model if needed; returns its trainable ``tf.Variable`` s and its logit count.

    The probing call runs in inference mode, so it never updates BatchNorm statistics.
    """
    logits = model(x[:1], training=False)
    if isinstance(logits, (list, tuple, dict)) or len(logits.shape) != 2:
        shape = getattr(logits, "shape", type(logits).__name__)
        raise invalid_value(
            "model", f"a model whose output is logits of shape (batch, C); it gave {shape}", model
        )
    variables = [getattr(v, "value", v) for v in model.trainable_variables]
    if not variables:
        raise invalid_value("model", "a model with trainable weights", model)
    return variables, int(logits.shape[-1])


def _auto_chunk_size(variables: list[tf.Variable], num_classes: int, num_samples: int) -> int:
    """The largest chunk under `_CHUNK_BYTES`, then balanced over ``⌈N / chunk⌉`` chunks."""
    bytes_per_sample = num_classes * sum(v.shape.num_elements() * v.dtype.size for v in variables)
    largest = max(1, _CHUNK_BYTES // max(1, bytes_per_sample))
    num_chunks = math.ceil(num_samples / largest)
    return math.ceil(num_samples / num_chunks)


# Compiled per-chunk Jacobian functions, per model (weakly: they die with the model), keyed by
# (input spec, training, trace_classes, the trainable variables), so repeated calls do not retrace.
_JACOBIAN_FUNCTIONS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _jacobian_function(
    model: Any,
    spec: tf.TensorSpec,
    variables: list[tf.Variable],
    num_classes: int,
    trace_classes: bool,
    training: bool,
) -> Any:
    """A `tf.function`: chunk ``(B, ...)`` -> per-variable Jacobians, flattened for the Gram.

    Each returned tensor is ``(B, C·P_v)`` when ``trace_classes`` (the Gram of such rows sums over
    classes) and ``(B·C, P_v)`` (rows sample-major) otherwise. The batch axis of ``spec`` is
    `None`, so chunks of every size share one trace.
    """
    key = (spec, training, trace_classes, tuple(id(v) for v in variables))
    try:
        cache = _JACOBIAN_FUNCTIONS.setdefault(model, {})
    except TypeError:  # not weakly referenceable: no caching
        cache = {}
    if key in cache:
        return cache[key]
    model_ref = weakref.ref(model)  # the compiled function must not keep the model alive

    def per_sample(sample: tf.Tensor) -> list[tf.Tensor]:
        with tf.GradientTape() as tape:
            logits = model_ref()(sample[None], training=training)[0]
        return tape.jacobian(
            logits,
            variables,
            unconnected_gradients=tf.UnconnectedGradients.ZERO,
            experimental_use_pfor=True,
        )

    @tf.function(input_signature=[spec], reduce_retracing=True)
    def chunk_jacobians(chunk: tf.Tensor) -> list[tf.Tensor]:
        jacobians = tf.vectorized_map(per_sample, chunk)  # each (B, C, *variable.shape)
        rows = tf.shape(chunk)[0] * (1 if trace_classes else num_classes)
        return [tf.reshape(jacobian, (rows, -1)) for jacobian in jacobians]

    cache[key] = chunk_jacobians
    return chunk_jacobians


class _DropPforFallbackNotice(logging.Filter):
    """Drops pfor's "Conv2DBackpropFilter uses a while_loop. Fix that!" (a TensorFlow TODO).

    Per-sample convolution filter gradients are vectorised over the classes but looped over the
    samples inside the graph; the result is exact and still far faster than ``method="loop"``.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return "uses a while_loop. Fix that!" not in record.getMessage()


@contextlib.contextmanager
def _quiet_pfor() -> Iterator[None]:
    logger = tf.get_logger()
    notice_filter = _DropPforFallbackNotice()
    logger.addFilter(notice_filter)
    try:
        yield
    finally:
        logger.removeFilter(notice_filter)


@tf.function(reduce_retracing=True)
def _gram(left: list[tf.Tensor], right: list[tf.Tensor]) -> tf.Tensor:
    """``Σ_v left_v right_vᵀ``: per-variable products in the weights' dtype, summed in float64.

    (``tf.einsum`` runs these products about twice as fast on a CPU as ``tf.matmul`` with
    ``transpose_b=True`` does.)
    """
    return tf.add_n(
        [
            tf.cast(tf.einsum("ip,jp->ij", a, b), tf.float64)
            for a, b in zip(left, right, strict=True)
        ]
    )


def _vectorised_ntk(
    model: Any,
    x: tf.Tensor,
    variables: list[tf.Variable],
    num_classes: int,
    trace_classes: bool,
    training: bool,
    chunk_size: int,
) -> np.ndarray:
    spec = tf.TensorSpec((None, *x.shape[1:]), x.dtype)
    jacobian = _jacobian_function(model, spec, variables, num_classes, trace_classes, training)
    num_samples = int(x.shape[0])
    width = 1 if trace_classes else num_classes
    kernel = np.empty((num_samples * width, num_samples * width), dtype=np.float64)
    starts = range(0, num_samples, chunk_size)
    with _quiet_pfor():
        _fill_kernel(kernel, x, jacobian, starts, chunk_size, width)
    return kernel


def _fill_kernel(
    kernel: np.ndarray, x: tf.Tensor, jacobian: Any, starts: range, chunk_size: int, width: int
) -> None:
    """Fills ``kernel`` block by block: upper triangle computed, lower one mirrored."""
    num_samples = int(x.shape[0])
    for index, row in enumerate(starts):
        rows = slice(row * width, min(row + chunk_size, num_samples) * width)
        row_jacobian = jacobian(x[row : row + chunk_size])
        block = _gram(row_jacobian, row_jacobian).numpy()
        kernel[rows, rows] = 0.5 * (block + block.T)
        for column in starts[index + 1 :]:
            columns = slice(column * width, min(column + chunk_size, num_samples) * width)
            block = _gram(row_jacobian, jacobian(x[column : column + chunk_size])).numpy()
            kernel[rows, columns] = block
            kernel[columns, rows] = block.T
        del row_jacobian


def _loop_ntk(
    model: Any,
    x: tf.Tensor,
    variables: list[tf.Variable],
    num_classes: int,
    trace_classes: bool,
    training: bool,
) -> np.ndarray:
    rows = []
    for index in range(int(x.shape[0])):
        with tf.GradientTape(persistent=True) as tape:
            logits = model(x[index : index + 1], training=training)[0]
            outputs = [logits[c] for c in range(num_classes)]
        for output in outputs:
            gradients = tape.gradient(
                output, variables, unconnected_gradients=tf.UnconnectedGradients.ZERO
            )
            rows.append(np.concatenate([np.ravel(g.numpy()) for g in gradients]))
        del tape
    jacobian = np.asarray(rows, dtype=np.float64)  # (N·C, P), rows sample-major
    if trace_classes:
        jacobian = jacobian.reshape(int(x.shape[0]), -1)  # (N, C·P)
    return jacobian @ jacobian.T


def _kernel(kernel: Any) -> np.ndarray:
    """Validates a symmetric kernel; returns it as a float64 array, exactly symmetrised."""
    try:
        matrix = np.asarray(kernel, dtype=np.float64)
    except (TypeError, ValueError):
        raise invalid_value("kernel", "a square symmetric matrix", kernel) from None
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] == 0:
        raise invalid_value("kernel", "a non-empty square symmetric matrix", _describe(matrix))
    if not np.isfinite(matrix).all():
        raise invalid_value("kernel", "a finite square symmetric matrix", _describe(matrix))
    scale = np.abs(matrix).max()
    if np.abs(matrix - matrix.T).max() > _SYMMETRY_RTOL * scale:
        raise invalid_value(
            "kernel",
            f"a symmetric matrix (|K - Kᵀ| <= {_SYMMETRY_RTOL:g}·max|K|)",
            _describe(matrix),
        )
    return 0.5 * (matrix + matrix.T)


def eigenvalues(kernel: Any) -> np.ndarray:
    """The eigenvalues of a symmetric kernel, largest first.

    Formula:

    ```
    K = Q diag(λ) Qᵀ,   λ_1 >= λ_2 >= ... >= λ_n
    ```

    computed by ``np.linalg.eigvalsh`` on ``(K + Kᵀ)/2`` in float64.

    Args:
        kernel: A square symmetric matrix of shape ``(n, n)``, e.g. from :func:`empirical_ntk`.
            Asymmetry up to ``1e-5·max|K|`` (float32 round-off) is tolerated.

    Returns:
        A float64 array of shape ``(n,)`` in descending order.

    Raises:
        ValueError: If ``kernel`` is empty, not square, not finite or not symmetric.

    Example:

    >>> eigenvalues([[2.0, 1.0], [1.0, 2.0]])
    array([3., 1.])

    References:
        - Jacot, Gabriel & Hongler, *Neural Tangent Kernel: Convergence and Generalization in
          Neural Networks*, arXiv:1806.07572.
    """
    return np.linalg.eigvalsh(_kernel(kernel))[::-1].copy()


def _condition_number(values: np.ndarray) -> float:
    largest, smallest = float(values[0]), float(values[-1])
    tolerance = values.size * np.finfo(np.float64).eps * abs(largest)
    if largest <= 0.0 or smallest <= tolerance:
        return math.inf
    return largest / smallest


def condition_number(kernel: Any) -> float:
    """The spectral condition number ``λ_max / λ_min`` of a symmetric positive kernel.

    A kernel whose smallest eigenvalue is zero or negative within float64 round-off (at most
    ``n·ε·|λ_max|``, ε the float64 machine epsilon, as ``np.linalg.matrix_rank`` uses) is
    singular: the result is then ``inf``, as it is for the zero kernel.

    Formula:

    ```
    κ(K) = λ_max(K) / λ_min(K)        (inf if λ_min <= n·ε·|λ_max|)
    ```

    Args:
        kernel: A square symmetric matrix of shape ``(n, n)``, e.g. from :func:`empirical_ntk`.

    Returns:
        A Python float ``>= 1``, or ``inf``.

    Raises:
        ValueError: If ``kernel`` is empty, not square, not finite or not symmetric.

    Example:

    >>> condition_number([[2.0, 1.0], [1.0, 2.0]])   # eigenvalues 3 and 1
    3.0
    >>> condition_number([[1.0, 1.0], [1.0, 1.0]])   # eigenvalues 2 and 0
    inf

    References:
        - Golub & Van Loan, *Matrix Computations*, 4th ed., §2.6 (no arXiv id).
    """
    return _condition_number(eigenvalues(kernel))


def ntk_summary(kernel: Any) -> dict[str, float]:
    """Spectral summary of a kernel, for tables and JSON reports.

    Formula:

    ```
    trace = Σ_i K[i, i] = Σ_i λ_i,   condition_number = λ_max / λ_min (see condition_number)
    ```

    Args:
        kernel: A square symmetric matrix of shape ``(n, n)``, e.g. from :func:`empirical_ntk`.

    Returns:
        A dict of Python numbers: ``size`` (``n``, an int), ``trace``, ``lambda_max``,
        ``lambda_min`` and ``condition_number`` (``inf`` for a singular kernel).

    Raises:
        ValueError: If ``kernel`` is empty, not square, not finite or not symmetric.

    Example:

    >>> ntk_summary([[2.0, 1.0], [1.0, 2.0]])
    {'size': 2, 'trace': 4.0, 'lambda_max': 3.0, 'lambda_min': 1.0, 'condition_number': 3.0}

    References:
        - Jacot, Gabriel & Hongler, *Neural Tangent Kernel: Convergence and Generalization in
          Neural Networks*, arXiv:1806.07572.
    """
    matrix = _kernel(kernel)
    values = np.linalg.eigvalsh(matrix)[::-1]
    return {
        "size": int(matrix.shape[0]),
        "trace": float(np.trace(matrix)),
        "lambda_max": float(values[0]),
        "lambda_min": float(values[-1]),
        "condition_number": _condition_number(values),
    }
