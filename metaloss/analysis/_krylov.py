"""Matrix-free Krylov algorithms for a symmetric operator given only by its products ``v ↦ A v``.

The algorithms know nothing of Hessians or TensorFlow: they take a ``matvec`` on flat float64
NumPy vectors of length ``size`` and do all their vector algebra on the host in float64, so
:mod:`metaloss.analysis.hessian` (and its tests) can run them on a Hessian operator, and these
functions can be tested on explicit matrices against ``np.linalg.eigh``.

- :class:`Lanczos`: tridiagonalisation with full re-orthogonalisation, restarted on breakdown.
- :func:`lanczos_top`: the k algebraically largest eigenpairs from one Krylov space.
- :func:`power_top`: PyHessian's power iteration with deflation and a negative shift.
- :func:`lanczos_quadrature`: the nodes and weights of stochastic Lanczos quadrature.

References:
    Lanczos, *An iteration method for the solution of the eigenvalue problem of linear
    differential and integral operators*, J. Res. Nat. Bur. Standards 45(4), 1950.
    Golub & Van Loan, *Matrix Computations*, 4th ed., §10.1. Parlett, *The Symmetric Eigenvalue
    Problem*, SIAM 1998. Yao, Gholami, Keutzer, Mahoney, *PyHessian: Neural Networks Through the
    Lens of the Hessian*, arXiv 1912.07145.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["Lanczos", "Matvec", "lanczos_quadrature", "lanczos_top", "power_top"]

Matvec = Callable[[np.ndarray], np.ndarray]
"""``v ↦ A v`` for a symmetric ``A``: a float64 vector of shape ``(n,)`` to one of that shape."""


class Lanczos:
    """Lanczos tridiagonalisation with full re-orthogonalisation, in float64.

    Formula (``q_1 = start/‖start‖``; ``Q_m = [q_1 … q_m]``):

    ```
    α_j = q_jᵀ A q_j,   w = A q_j - Q_j Q_jᵀ A q_j  (twice),   β_j = ‖w‖,   q_{j+1} = w / β_j
    Q_mᵀ A Q_m = T_m = tridiag(β_{1:m-1}, α_{1:m}, β_{1:m-1})
    ```

    Re-orthogonalising against the whole basis (Gram-Schmidt applied twice: "twice is enough",
    Kahan-Parlett) keeps ``Q_m`` orthonormal to rounding, so no spurious copies of converged Ritz
    values appear. On a breakdown (``β_j ≤ 1e-10·max(|α_j|, |β_i|)``: the Krylov space is
    invariant) it restarts from a random vector orthogonal to the basis and stores ``β_j = 0``,
    so ``T`` becomes block-diagonal and eigenvalues the first block could not see (the second
    copy of a repeated eigenvalue, those orthogonal to the start) are found in later blocks.

    Cost: one product per :meth:`step`, plus ``O(m·n)`` flops for the re-orthogonalisation at
    step m and ``8·m·n`` bytes for the basis.

    Args:
        matvec: ``v ↦ A v`` for a symmetric ``A`` of size n.
        start: the (non-zero) starting vector, shape ``(n,)``.
        rng: draws the restart vectors after a breakdown.

    Attributes:
        basis: the orthonormal vectors ``q_1, …`` (one ahead of ``alphas`` until the basis
            spans all n dimensions).
        alphas: the diagonal of ``T``.
        betas: its off-diagonal; ``betas[j]`` couples ``basis[j]`` and ``basis[j + 1]``.
        breakdown: whether the last step found an invariant subspace.
        block_start: the index of the first column of the current Krylov block.

    Example:

    >>> lanczos = Lanczos(np.diag([3.0, 1.0, -2.0]).__matmul__, np.ones(3), np.random.default_rng())
    >>> for _ in range(3):
    ...     _ = lanczos.step()
    >>> [round(float(t), 6) for t in lanczos.ritz()[0]]
    [-2.0, 1.0, 3.0]

    References:
        Golub & Van Loan, *Matrix Computations*, 4th ed., §10.1. Parlett, *The Symmetric
        Eigenvalue Problem*, SIAM 1998, §6.9 (re-orthogonalisation) and §13.
    """

    def __init__(self, matvec: Matvec, start: np.ndarray, rng: np.random.Generator) -> None:
        self._matvec, self._rng = matvec, rng
        self.basis = [start / np.linalg.norm(start)]
        self.alphas: list[float] = []
        self.betas: list[float] = []  # betas[j] couples basis[j] and basis[j + 1]
        self.breakdown = False
        self.block_start = 0  # index of the first column of the current Krylov block

    def step(self) -> float:
        """Adds one column to T; returns the new off-diagonal β (0 on an invariant subspace)."""
        q = self.basis[-1]
        w = self._matvec(q)
        alpha = float(q @ w)
        self.alphas.append(alpha)
        basis = np.stack(self.basis)
        for _ in range(2):  # twice is enough (Kahan-Parlett)
            w = w - basis.T @ (basis @ w)
        beta = float(np.linalg.norm(w))
        scale = max(abs(alpha), *(abs(b) for b in self.betas), 1e-300)
        self.breakdown = beta <= 1e-10 * scale
        if len(self.basis) < w.size:
            if self.breakdown:
                beta, w = 0.0, self._rng.standard_normal(w.size)
                for _ in range(2):
                    w = w - basis.T @ (basis @ w)
                self.block_start = len(self.alphas)
            self.betas.append(beta)
            self.basis.append(w / np.linalg.norm(w))
        return beta

    def ritz(self, start: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Eigenvalues (ascending) and eigenvectors of T, or of its block from column ``start``."""
        alphas, off = self.alphas[start:], np.asarray(self.betas[start : len(self.alphas) - 1])
        tridiagonal = np.diag(alphas) + np.diag(off, 1) + np.diag(off, -1)
        return np.linalg.eigh(tridiagonal)


def lanczos_top(
    matvec: Matvec,
    size: int,
    k: int,
    *,
    tol: float,
    max_iterations: int,
    rng: np.random.Generator | int | None = None,
) -> tuple[np.ndarray, np.ndarray, bool]:
    """The ``k`` algebraically largest eigenpairs of a symmetric operator, by :class:`Lanczos`.

    Formula: after m steps from a standard normal start, ``T_m = S Θ Sᵀ``; the Ritz pairs
    ``(θ_i, Q_m s_i)`` approximate eigenpairs with residual ``‖A Q_m s_i - θ_i Q_m s_i‖ =
    |β_m S[m, i]|``. It stops when, for the top-k Ritz values and for the top one of the current
    Krylov block (after a restart an eigenvalue above the k-th can still hide there),

    ```
    |β_m S[m, i]| ≤ tol · max(|θ_i|, 1e-8 · max_j |θ_j|)
    ```

    or when the basis spans all ``size`` dimensions (then ``T`` is ``A`` in another basis and
    the values are exact). The test is skipped right after a breakdown, so a restarted block is
    judged first. A repeated eigenvalue appears once per Krylov block: its further copies are
    found only if the iteration runs until a breakdown.

    Cost: one product per step, ``min(size, max(max_iterations, k))`` steps at most; an
    ``m × m`` eigen-decomposition and ``O(m·size)`` flops per step; ``8·m·size`` bytes.

    Args:
        matvec: ``v ↦ A v`` for a symmetric ``A``.
        size: the dimension n.
        k: how many eigenvalues, ``1 ≤ k ≤ size``.
        tol: the relative residual tolerance above.
        max_iterations: the most Lanczos steps (raised to k, capped at ``size``).
        rng: a ``np.random.Generator`` or a seed, for the start and restart vectors.
            Defaults to `None` (fresh entropy).

    Returns:
        ``(eigenvalues, eigenvectors, converged)``: shape ``(k,)`` descending; unit Ritz vectors
        as columns, shape ``(size, k)``; whether the stopping test above was met.

    Example:

    >>> matrix = np.diag([5.0, 2.0, 2.0, -7.0])
    >>> values, vectors, converged = lanczos_top(matrix.__matmul__, 4, 2, tol=1e-8,
    ...                                          max_iterations=10, rng=0)
    >>> [round(float(v), 6) for v in values], converged
    ([5.0, 2.0], True)

    References:
        Golub & Van Loan, *Matrix Computations*, 4th ed., §10.1.4 (residual bound of Ritz pairs).
        Parlett, *The Symmetric Eigenvalue Problem*, SIAM 1998, §13.
    """
    rng = np.random.default_rng(rng)
    lanczos = Lanczos(matvec, rng.standard_normal(size), rng)
    converged = False
    for m in range(1, min(size, max(max_iterations, k)) + 1):
        beta = lanczos.step()
        theta, s = lanczos.ritz()
        top = np.argsort(theta)[::-1][:k]
        if m == size:  # the basis spans everything: T is A in another basis
            converged = True
            break
        if m < k or lanczos.breakdown:  # after a breakdown, judge the restarted block first
            continue
        # Residual bounds |β_m s_m| of the top-k Ritz values and of the current block's top one:
        # after a restart, an eigenvalue above the k-th can still hide in the new block.
        block = lanczos.block_start
        theta_b, s_b = (theta, s) if block == 0 else lanczos.ritz(block)
        values = np.append(theta[top], theta_b[-1])
        last = np.append(s[m - 1, top], s_b[-1, -1])
        floor = 1e-8 * np.max(np.abs(theta))
        converged = bool(np.all(np.abs(beta * last) <= tol * np.maximum(np.abs(values), floor)))
        if converged:
            break
    basis = np.stack(lanczos.basis[:m], axis=1)
    return theta[top], basis @ s[:, top], converged


def power_top(
    matvec: Matvec,
    size: int,
    k: int,
    *,
    tol: float,
    max_iterations: int,
    rng: np.random.Generator | int | None = None,
) -> tuple[np.ndarray, np.ndarray, bool]:
    """The ``k`` algebraically largest eigenpairs by PyHessian's power iteration.

    Formula (one eigenvalue at a time; ``u_1 … u_{i-1}`` the unit eigenvectors found, σ a shift):

    ```
    v ← v - Σ_j (u_jᵀ v) u_j,   v ← v/‖v‖,   w = A v - σ v,   λ = vᵀ w,   v ← w/‖w‖
    ```

    from a standard normal ``v``, until the Rayleigh quotient λ changes by less than
    ``tol·|λ_previous|``. The first run has σ = 0 and finds the dominant (largest-magnitude)
    eigenvalue of the deflated operator; when that is negative it runs again with σ = λ, on
    ``A - λI`` (positive semi-definite on the deflated space), to reach the algebraically
    largest one, and returns ``λ + σ``. Each vector is orthogonalised against those found before,
    and the pairs are sorted descending.

    Cost: one product per iteration, up to ``max_iterations`` per run, two runs for an
    eigenvalue whose deflated operator is dominated by a negative one; the number of iterations
    grows like ``1/log(|λ_1|/|λ_2|)`` in the ratio of the two dominant magnitudes, so it is slow,
    and can stop early on an inaccurate value, when eigenvalues of opposite signs have nearly
    equal magnitudes. ``O(k·size)`` flops per iteration for the deflation.

    Args:
        matvec: ``v ↦ A v`` for a symmetric ``A``.
        size: the dimension n.
        k: how many eigenvalues, ``1 ≤ k ≤ size``.
        tol: the relative change of the Rayleigh quotient that stops a run.
        max_iterations: the most iterations per run.
        rng: a ``np.random.Generator`` or a seed, for the start vectors. Defaults to `None`.

    Returns:
        ``(eigenvalues, eigenvectors, converged)``: shape ``(k,)`` descending; unit vectors as
        columns, shape ``(size, k)``; whether every run met the tolerance.

    Example:

    >>> matrix = np.diag([5.0, 2.0, 1.0, -7.0])
    >>> values, _, converged = power_top(matrix.__matmul__, 4, 2, tol=1e-12,
    ...                                  max_iterations=500, rng=0)
    >>> [round(float(v), 6) for v in values], converged
    ([5.0, 2.0], True)

    References:
        Yao, Gholami, Keutzer, Mahoney, *PyHessian: Neural Networks Through the Lens of the
        Hessian*, arXiv 1912.07145, Algorithm 1. Golub & Van Loan, *Matrix Computations*,
        4th ed., §8.2.1 (power method) and §7.3.2 (shifts).
    """
    rng = np.random.default_rng(rng)
    values, vectors, all_converged = [], [], True

    def iterate(shift):
        v = rng.standard_normal(size)
        previous, converged = None, False
        for _ in range(max_iterations):
            for u in vectors:  # deflation: stay orthogonal to the eigenvectors found
                v = v - (u @ v) * u
            v = v / np.linalg.norm(v)
            hv = matvec(v) - shift * v
            value = float(v @ hv)
            v = hv / max(np.linalg.norm(hv), 1e-300)
            if previous is not None and abs(value - previous) < tol * (abs(previous) + 1e-12):
                converged = True
                break
            previous = value
        return value + shift, v, converged

    for _ in range(k):
        value, vector, converged = iterate(0.0)
        if value < 0:  # the dominant one is the most negative: iterate on A - value·I
            value, vector, converged = iterate(value)
        for u in vectors:
            vector = vector - (u @ vector) * u
        values.append(value)
        vectors.append(vector / np.linalg.norm(vector))
        all_converged = all_converged and converged
    order = np.argsort(values)[::-1]
    return np.asarray(values)[order], np.stack(vectors, axis=1)[:, order], all_converged


def lanczos_quadrature(
    matvec: Matvec,
    size: int,
    *,
    runs: int,
    steps: int,
    rng: np.random.Generator | int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of stochastic Lanczos quadrature for the spectral density of ``A``.

    Formula (for each run, ``m`` :class:`Lanczos` steps from a unit Rademacher ``q``,
    ``T = S Θ Sᵀ``):

    ```
    φ(t) = (1/n) Σ_i δ(t - λ_i) ≈ (1/R) Σ_runs Σ_j S[0, j]² δ(t - Θ_j)
    ```

    ``Σ_j S[0, j]² f(Θ_j) = qᵀ f(A) q`` exactly for polynomials f of degree below ``2m``
    (Gauss quadrature), and ``E[qᵀ f(A) q] = tr f(A)/n``; so each run's weights sum to
    ``1/R`` and their mean ``Σ w Θ`` is ``qᵀ A q``, an unbiased estimate of ``tr A / n``. A run
    stops early on a breakdown, where the quadrature is already exact.

    Cost: ``R · min(steps, size)`` products at most; ``8·m·size`` bytes per run.

    Args:
        matvec: ``v ↦ A v`` for a symmetric ``A``.
        size: the dimension n.
        runs: random starting vectors R.
        steps: Lanczos steps m per run (capped at ``size``).
        rng: a ``np.random.Generator`` or a seed, for the starting vectors (and restart vectors,
            drawn but unused after a breakdown). Defaults to `None`.

    Returns:
        ``(nodes, weights)``, each of shape ``(M,)`` with ``M ≤ R·m``, the runs concatenated;
        the weights are non-negative and sum to 1.

    Example:

    >>> nodes, weights = lanczos_quadrature(np.diag([1.0, 3.0]).__matmul__, 2, runs=1, steps=2,
    ...                                     rng=0)
    >>> [round(float(v), 6) for v in (*nodes, *weights)]
    [1.0, 3.0, 0.5, 0.5]

    References:
        Golub & Meurant, *Matrices, Moments and Quadrature with Applications*, Princeton 2010.
        Ubaru, Chen, Saad, *Fast Estimation of tr(f(A)) via Stochastic Lanczos Quadrature*,
        SIAM J. Matrix Anal. Appl. 38(4), 2017. Ghorbani, Krishnan, Xiao, *An Investigation into
        Neural Net Optimization via Hessian Eigenvalue Density*, arXiv 1901.10159.
    """
    rng = np.random.default_rng(rng)
    nodes, weights = [], []
    for _ in range(runs):
        lanczos = Lanczos(matvec, rng.choice([-1.0, 1.0], size), rng)
        for _ in range(min(steps, size)):
            lanczos.step()
            if lanczos.breakdown:  # the quadrature is exact on this Krylov space
                break
        theta, s = lanczos.ritz()
        nodes.append(theta)
        weights.append(s[0] ** 2 / runs)
    return np.concatenate(nodes), np.concatenate(weights)
