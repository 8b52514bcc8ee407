"""The matrix-free Krylov algorithms on explicit symmetric NumPy matrices, against ``eigh``.

Every matrix is ``Q diag(λ) Qᵀ`` for a random orthogonal ``Q`` and a spectrum chosen here, and
the expected eigenpairs come from ``np.linalg.eigh`` of that matrix, which shares no code with
the algorithms. No TensorFlow: each test takes milliseconds.
"""

from __future__ import annotations

import numpy as np
import pytest

from metaloss.analysis._krylov import Lanczos, lanczos_quadrature, lanczos_top, power_top

N = 40


def symmetric(eigenvalues, seed=0):
    """A symmetric matrix with the given spectrum and random (Haar-like) eigenvectors."""
    eigenvalues = np.asarray(eigenvalues, dtype=np.float64)
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((len(eigenvalues),) * 2))
    matrix = (q * eigenvalues) @ q.T
    return (matrix + matrix.T) / 2


class Counted:
    """``v ↦ A v`` that counts its calls, as HessianOperator.products does."""

    def __init__(self, matrix):
        self.matrix, self.calls = matrix, 0

    def __call__(self, v):
        self.calls += 1
        return self.matrix @ v


def spectrum_40():
    # Distinct top three (9, 6, 4.5), a repeated pair (1, 1) and a repeated negative triple
    # (-1.5) inside, and the most negative value -11 three times, largest in magnitude, so the
    # unshifted power iteration is drawn to it and has to shift.
    middle = np.random.default_rng(1).uniform(-1.0, 0.9, N - 11)
    return np.concatenate([[9.0, 6.0, 4.5, 1.0, 1.0], middle, [-1.5] * 3, [-11.0] * 3])


def check_eigenpairs(matrix, values, vectors, k, rtol):
    expected = np.linalg.eigh(matrix)[0][::-1][:k]
    np.testing.assert_allclose(values, expected, rtol=rtol, atol=1e-12)
    assert np.all(np.diff(values) <= 0) and vectors.shape == (len(matrix), k)
    np.testing.assert_allclose(vectors.T @ vectors, np.eye(k), atol=1e-10)
    residual = np.linalg.norm(matrix @ vectors - vectors * values, axis=0)
    assert np.all(residual < 1e-4 * np.abs(expected[0]))


@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize(
    ("solve", "tol", "max_iterations"), [(lanczos_top, 1e-10, 100), (power_top, 1e-12, 2000)]
)
def test_top_k_match_eigh(solve, tol, max_iterations, k):
    matrix = symmetric(spectrum_40())
    matvec = Counted(matrix)
    values, vectors, converged = solve(matvec, N, k, tol=tol, max_iterations=max_iterations, rng=0)
    assert converged
    check_eigenpairs(matrix, values, vectors, k, rtol=1e-9)
    if solve is lanczos_top:  # one product per step, never more steps than N
        assert k <= matvec.calls <= N


def test_lanczos_needs_far_fewer_products_than_power_iteration():
    # Measured: 17 against 299 products at these tolerances.
    matrix = symmetric(spectrum_40())
    calls = {}
    for solve in (lanczos_top, power_top):
        matvec = Counted(matrix)
        values, _, converged = solve(matvec, N, 3, tol=1e-10, max_iterations=2000, rng=0)
        assert converged
        np.testing.assert_allclose(values, [9.0, 6.0, 4.5], rtol=1e-8)
        calls[solve.__name__] = matvec.calls
    assert 5 * calls["lanczos_top"] < calls["power_top"]


def test_power_iteration_shifts_when_the_dominant_eigenvalue_is_negative():
    # Negative definite: every run is first drawn to the most negative value, then shifted.
    matrix = symmetric([-1.0, -2.0, -4.0, -8.0, -20.0, -30.0])
    matvec = Counted(matrix)
    values, vectors, converged = power_top(matvec, 6, 2, tol=1e-13, max_iterations=3000, rng=2)
    assert converged
    check_eigenpairs(matrix, values, vectors, 2, rtol=1e-8)


def test_every_eigenvalue_repeated_is_found_by_restarting():
    # A ⊗ I₂: each of 20 distinct eigenvalues twice, so a Krylov space has dimension 20 at most
    # and breaks down there; the restart in its complement finds the second copies. Power
    # iteration finds them by deflation.
    base = np.concatenate([[9.0, 4.5], np.linspace(-1.0, 1.0, 17), [-11.0]])
    matrix = np.kron(symmetric(base, seed=3), np.eye(2))
    for solve, tol in ((lanczos_top, 1e-10), (power_top, 1e-13)):
        matvec = Counted(matrix)
        values, vectors, converged = solve(matvec, N, 4, tol=tol, max_iterations=3000, rng=0)
        assert converged
        check_eigenpairs(matrix, values, vectors, 4, rtol=1e-8)
        np.testing.assert_allclose(values, [9.0, 9.0, 4.5, 4.5], rtol=1e-8)
        if solve is lanczos_top:
            assert matvec.calls > 20  # it got past the breakdown at step 20


def test_lanczos_sees_a_repeated_eigenvalue_once_per_krylov_block():
    # The documented limit of single-vector Lanczos: a start vector has one component in the
    # eigenspace of a repeated top value, so the first block holds one copy; if the top k
    # converge before the space is exhausted, the second copy is missed (power iteration, by
    # deflation, finds it).
    spectrum = np.concatenate([[9.0, 6.0, 6.0, 4.0], spectrum_40()[5:-3]])
    matrix, size = symmetric(spectrum, seed=4), len(spectrum)
    values, _, converged = lanczos_top(
        matrix.__matmul__, size, 3, tol=1e-10, max_iterations=100, rng=0
    )
    assert converged
    np.testing.assert_allclose(values, [9.0, 6.0, 4.0], rtol=1e-8)
    values, _, converged = power_top(
        matrix.__matmul__, size, 3, tol=1e-13, max_iterations=3000, rng=0
    )
    assert converged
    np.testing.assert_allclose(values, [9.0, 6.0, 6.0], rtol=1e-8)


def test_lanczos_breaks_down_and_restarts_on_a_low_rank_matrix():
    # Rank 3 with eigenvalues 5, 2, -3 and 0 (37 times): 4 distinct values, so the Krylov
    # space of a generic start is invariant after 4 steps.
    spectrum = np.concatenate([[5.0, 2.0, -3.0], np.zeros(N - 3)])
    matrix = symmetric(spectrum, seed=5)
    start = np.random.default_rng(0).standard_normal(N)
    lanczos = Lanczos(matrix.__matmul__, start, np.random.default_rng(1))
    betas = [lanczos.step() for _ in range(4)]
    assert lanczos.breakdown and betas[-1] == 0.0 and lanczos.block_start == 4
    assert all(b > 1e-3 for b in betas[:-1])
    np.testing.assert_allclose(np.sort(lanczos.ritz()[0]), [-3.0, 0.0, 2.0, 5.0], atol=1e-10)
    # The restart vector is orthogonal to the Krylov space, which holds the eigenvectors of 5,
    # 2 and -3: it lies in the null space, an invariant subspace, so it breaks down at once.
    assert lanczos.step() == 0.0 and lanczos.breakdown and lanczos.block_start == 5
    np.testing.assert_allclose(lanczos.ritz(start=4)[0], [0.0], atol=1e-10)
    # The basis stays orthonormal across the restart, and T is Qᵀ A Q, block diagonal.
    q = np.stack(lanczos.basis[:5], axis=1)
    np.testing.assert_allclose(q.T @ q, np.eye(5), atol=1e-12)
    tridiagonal = q.T @ matrix @ q
    np.testing.assert_allclose(tridiagonal[3, 4], 0.0, atol=1e-12)
    np.testing.assert_allclose(np.diag(tridiagonal), lanczos.alphas, atol=1e-12)

    # top_eigenvalues past the breakdown: two zeros after 5 (the restart shows the second).
    for solve, tol in ((lanczos_top, 1e-8), (power_top, 1e-12)):
        matvec = Counted(matrix)
        values, vectors, converged = solve(matvec, N, 4, tol=tol, max_iterations=1000, rng=0)
        assert converged
        check_eigenpairs(matrix, values, vectors, 4, rtol=1e-8)
        np.testing.assert_allclose(values, [5.0, 2.0, 0.0, 0.0], atol=1e-8)


def test_a_start_in_an_invariant_subspace_breaks_down_at_once():
    matrix = symmetric([3.0, 1.0, -1.0, -2.0], seed=6)
    eigenvector = np.linalg.eigh(matrix)[1][:, 0]
    lanczos = Lanczos(matrix.__matmul__, 7.0 * eigenvector, np.random.default_rng(0))
    assert lanczos.step() == 0.0 and lanczos.breakdown
    np.testing.assert_allclose(lanczos.ritz()[0], [-2.0], rtol=1e-12)
    for _ in range(3):
        lanczos.step()
    np.testing.assert_allclose(lanczos.ritz()[0], [-2.0, -1.0, 1.0, 3.0], rtol=1e-10)


def test_the_full_space_is_exact_and_seeds_reproduce():
    matrix = symmetric(spectrum_40()[:6], seed=7)
    matvec = Counted(matrix)
    values, vectors, converged = lanczos_top(matvec, 6, 6, tol=1e-30, max_iterations=1, rng=3)
    assert converged and matvec.calls == 6  # raised to k steps, then T is A in another basis
    check_eigenpairs(matrix, values, vectors, 6, rtol=1e-10)
    for solve in (lanczos_top, power_top):
        by_seed = solve(matrix.__matmul__, 6, 2, tol=1e-6, max_iterations=50, rng=3)
        by_rng = solve(
            matrix.__matmul__, 6, 2, tol=1e-6, max_iterations=50, rng=np.random.default_rng(3)
        )
        for a, b in zip(by_seed, by_rng, strict=True):
            np.testing.assert_array_equal(a, b)


def test_quadrature_weights_sum_to_one_and_its_moments_are_exact():
    # Per run, Σ_j S[0,j]² Θ_j^p = qᵀ A^p q for p < 2m (Gauss quadrature), q = r/√N with the
    # Rademacher r drawn by the same generator (no breakdown, so no restart draws in between).
    matrix = symmetric(spectrum_40(), seed=8)
    runs, steps = 3, 5
    matvec = Counted(matrix)
    nodes, weights = lanczos_quadrature(matvec, N, runs=runs, steps=steps, rng=9)
    assert nodes.shape == weights.shape == (runs * steps,) and matvec.calls == runs * steps
    np.testing.assert_allclose(weights.sum(), 1.0, rtol=1e-12)
    assert np.all(weights >= 0)
    rng = np.random.default_rng(9)
    probes = [rng.choice([-1.0, 1.0], N) / np.sqrt(N) for _ in range(runs)]
    for p in range(2 * steps):
        moment = np.mean([q @ np.linalg.matrix_power(matrix, p) @ q for q in probes])
        np.testing.assert_allclose(weights @ nodes**p, moment, rtol=1e-9, atol=1e-12)


def test_quadrature_mean_estimates_trace_over_n():
    # Σ w θ averages R values of rᵀAr/N, unbiased for tr A / N with variance
    # 2 Σ_{i≠j} A_ij² / (R N²) (Rademacher r).
    matrix = symmetric(spectrum_40(), seed=10)
    runs = 200
    nodes, weights = lanczos_quadrature(matrix.__matmul__, N, runs=runs, steps=3, rng=11)
    off_diagonal = np.sum(matrix**2) - np.sum(np.diag(matrix) ** 2)
    sd = np.sqrt(2 * off_diagonal / runs) / N
    assert abs(weights @ nodes - np.trace(matrix) / N) < 4 * sd


def test_quadrature_of_a_diagonal_matrix_is_its_exact_spectrum():
    # For a diagonal A, every Rademacher probe gives rᵀAr = tr A, and the run stops at the
    # breakdown after one step per distinct value: the nodes are the distinct eigenvalues and
    # the weights their multiplicities / N, exactly.
    diagonal = np.array([4.0, 4.0, 4.0, 1.0, -2.0, -2.0, 0.0, 0.0, 0.0, 0.0])
    matvec = Counted(np.diag(diagonal))
    nodes, weights = lanczos_quadrature(matvec, 10, runs=2, steps=100, rng=0)
    assert matvec.calls == 2 * 4
    order = np.argsort(nodes[:4])
    np.testing.assert_allclose(nodes[:4][order], [-2.0, 0.0, 1.0, 4.0], atol=1e-12)
    np.testing.assert_allclose(weights[:4][order], [0.1, 0.2, 0.05, 0.15], atol=1e-12)
    np.testing.assert_allclose(weights @ nodes, diagonal.mean(), rtol=1e-12)
