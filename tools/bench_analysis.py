"""Benchmark: the costs of the analysis tools (Hessian products, top eigenvalues, NTK).

Setup: the zoo's ``"mlp"`` on MNIST-1D (``metaloss.models.get("mlp", (40,), 10)`` with the
training split's feature normalisation), trained for ``--epochs`` epochs (Adam 1e-3, batch 128,
sparse cross-entropy from logits, seeded by ``--seed``) so that the Hessian is not the one at
initialisation. The Hessian is that of ``keras.losses.SparseCategoricalCrossentropy(
from_logits=True)`` over the first ``--samples`` training samples (one batch); the NTK is taken
on the first ``--ntk-samples`` training inputs. Everything runs side by side in ONE process.

1. Hessian-vector product time / gradient time. Three variants on the same data, in the same
   compiled machinery: ``HessianOperator(..., hvp=h).matvec(v)`` for ``h`` in
   ``"forward_over_reverse"`` and ``"reverse_over_reverse"``, and ``.gradient()`` (the same
   batching and host-side accumulation, one backward pass). After untimed warm-up calls (the
   first traces), each repeat runs ``ROUNDS`` rounds; a round times a block of ``BLOCK`` calls
   of every variant in turn, the order rotating. Reported: the median over repeats of the
   within-repeat ratio product / gradient (target <= 4).
2. Lanczos versus power iteration: Hessian-vector products used by
   ``operator.top_eigenvalues(5, method, tol=tol, max_iterations=MAX_ITERATIONS)`` for each
   ``tol`` in ``TOLERANCES`` (1e-3, 1e-4, 1e-5) and for ``SEEDS`` starting vectors (the median
   is reported; target: Lanczos <= 1/3 of power). Both are checked against a reference (Lanczos
   at tol 1e-10): whether they converged, their largest relative difference from each other and
   from the reference. (The two ``tol`` mean different things: Lanczos bounds the Ritz
   residual, power iteration stops when the Rayleigh quotient changes by less than ``tol``; so
   at the same ``tol`` power iteration is usually the less accurate.)
3. Vectorised NTK versus the per-sample loop: ``empirical_ntk(model, x, method="jacobian")``
   against ``method="loop"`` (the traced N x N kernel), after an untimed warm-up of each (the
   first traces the vectorised Jacobian); ``--ntk-repeats`` repeats, the order alternating.
   Reported: the median over repeats of loop time / jacobian time (target >= 10) and the
   largest difference between the kernels relative to the largest entry.

Run ``python tools/bench_analysis.py`` for the numbers in BENCHMARKS.md, and
``python tools/bench_analysis.py --quick`` for a smoke check (well under a minute).
"""

from __future__ import annotations

import platform
import shlex
import statistics
import sys
import time

import click
import numpy as np

from metaloss._quiet import quiet_tensorflow

HVP_TARGET = 4.0  # matvec time / gradient time, at most
LANCZOS_TARGET = 1 / 3  # Lanczos products / power-iteration products, at most
NTK_TARGET = 10.0  # loop time / jacobian time, at least
HVP_METHODS = ("forward_over_reverse", "reverse_over_reverse")
TOP_K = 5
REFERENCE_TOL = 1e-10
BLOCK = 10  # calls per timed block
ROUNDS = 5  # blocks per variant and repeat
SEEDS = 3  # starting vectors per eigenvalue method and tolerance
TOLERANCES = (1e-3, 1e-4, 1e-5)
MAX_ITERATIONS = 1000  # power iterations per eigenvalue (Lanczos steps: at most P anyway)


def _trained_model(epochs: int, seed: int):
    import keras

    import metaloss.data
    import metaloss.models

    data = metaloss.data.load("mnist1d", label_mode="sparse", seed=seed)
    x, y = data.arrays("train")
    keras.utils.set_random_seed(seed)
    model = metaloss.models.get(
        "mlp", (40,), 10, normalization=(data.channel_mean, data.channel_std)
    )
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(keras.optimizers.Adam(1e-3), loss, metrics=["accuracy"])
    history = model.fit(x, y, batch_size=128, epochs=epochs, shuffle=True, verbose=0)
    accuracy = history.history["accuracy"][-1] if epochs else float("nan")
    return model, loss, x, y, accuracy


def _time_block(call, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        call()  # every variant returns a NumPy array: nothing is left queued
    return time.perf_counter() - start


def _hvp_ratios(model, loss, data, repeats: int, rounds: int, block: int, seed: int):
    """Per-repeat ratios matvec / gradient for each product method, and median ms per call."""
    from metaloss.analysis.hessian import HessianOperator

    operators = {h: HessianOperator(model, loss, data, hvp=h) for h in HVP_METHODS}
    baseline = operators[HVP_METHODS[0]]
    vector = np.random.default_rng(seed).standard_normal(baseline.num_parameters)
    variants = {"gradient": baseline.gradient}
    variants.update({h: (lambda op=op: op.matvec(vector)) for h, op in operators.items()})
    for call in variants.values():  # untimed warm-up: tracing and first runs
        _time_block(call, 3)
    names = list(variants)
    ratios = {h: [] for h in HVP_METHODS}
    per_call = {name: [] for name in names}
    for repeat in range(repeats):
        totals = dict.fromkeys(names, 0.0)
        for index in range(rounds):
            shift = (repeat * rounds + index) % len(names)
            for name in names[shift:] + names[:shift]:
                totals[name] += _time_block(variants[name], block)
        for name in names:
            per_call[name].append(totals[name] / (rounds * block) * 1e3)
        for h in HVP_METHODS:
            ratios[h].append(totals[h] / totals["gradient"])
    return ratios, {name: statistics.median(ms) for name, ms in per_call.items()}, baseline


def _relative_difference(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))


def _eigen_comparison(operator, tols, seeds: int, seed: int, max_iterations: int):
    reference = operator.top_eigenvalues(
        TOP_K, "lanczos", tol=REFERENCE_TOL, max_iterations=max_iterations, seed=seed
    )
    rows = []
    for tol in tols:
        for offset in range(seeds):
            found = {}
            for method in ("lanczos", "power"):
                start = time.perf_counter()
                result = operator.top_eigenvalues(
                    TOP_K, method, tol=tol, max_iterations=max_iterations, seed=seed + offset
                )
                found[method] = (result, time.perf_counter() - start)
            (lanczos, lanczos_s), (power, power_s) = found["lanczos"], found["power"]
            rows.append(
                {
                    "tol": tol,
                    "seed": seed + offset,
                    "lanczos": lanczos.hessian_vector_products,
                    "power": power.hessian_vector_products,
                    "lanczos_s": lanczos_s,
                    "power_s": power_s,
                    "lanczos_converged": lanczos.converged,
                    "power_converged": power.converged,
                    "between": _relative_difference(power.eigenvalues, lanczos.eigenvalues),
                    "lanczos_error": _relative_difference(
                        lanczos.eigenvalues, reference.eigenvalues
                    ),
                    "power_error": _relative_difference(power.eigenvalues, reference.eigenvalues),
                }
            )
    return reference, rows


def _ntk_comparison(model, x, repeats: int):
    from metaloss.analysis.ntk import empirical_ntk

    variants = {
        "jacobian": lambda: empirical_ntk(model, x, method="jacobian"),
        "loop": lambda: empirical_ntk(model, x, method="loop"),
    }
    variants["jacobian"]()  # untimed warm-up: traces the vectorised Jacobian and the Gram
    empirical_ntk(model, x[:2], method="loop")  # and the loop's eager kernels
    ratios, seconds, kernels = [], {name: [] for name in variants}, {}
    for repeat in range(repeats):
        order = ("jacobian", "loop") if repeat % 2 == 0 else ("loop", "jacobian")
        for name in order:
            start = time.perf_counter()
            kernels[name] = variants[name]()
            seconds[name].append(time.perf_counter() - start)
        ratios.append(seconds["loop"][-1] / seconds["jacobian"][-1])
    difference = np.max(np.abs(kernels["jacobian"] - kernels["loop"]))
    agreement = float(difference / np.max(np.abs(kernels["loop"])))
    return ratios, {name: statistics.median(s) for name, s in seconds.items()}, agreement


def _row(quantity: str, measured: str, target: str, met: bool | None) -> str:
    verdict = "" if met is None else ("yes" if met else "**NO**")
    return f"| {quantity} | {measured} | {target} | {verdict} |"


@click.command()
@click.option("--samples", type=int, default=512, show_default=True, help="Hessian samples.")
@click.option("--repeats", type=int, default=7, show_default=True, help="Timed HVP repeats.")
@click.option("--ntk-samples", type=int, default=256, show_default=True, help="NTK inputs N.")
@click.option("--ntk-repeats", type=int, default=5, show_default=True, help="Timed NTK repeats.")
@click.option("--epochs", type=int, default=5, show_default=True, help="Training before.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--quick", is_flag=True, help="Tiny sizes, one tolerance: a smoke check.")
def main(samples, repeats, ntk_samples, ntk_repeats, epochs, seed, quick):
    quiet_tensorflow()
    import keras
    import tensorflow as tf

    rounds, block, seeds, tols, max_iterations = ROUNDS, BLOCK, SEEDS, TOLERANCES, MAX_ITERATIONS
    if quick:
        samples, repeats, ntk_samples, ntk_repeats, epochs = 128, 2, 32, 1, 1
        rounds, block, seeds, tols, max_iterations = 2, 3, 1, (1e-3,), 300
    print(f"command: python {' '.join(shlex.quote(a) for a in sys.argv)}")
    print(
        f"python {platform.python_version()}, tensorflow {tf.__version__}, "
        f"keras {keras.__version__}; mnist1d/mlp trained {epochs} epochs (seed {seed}); "
        f"Hessian on {samples} samples, {repeats} repeats; NTK on {ntk_samples} inputs, "
        f"{ntk_repeats} repeats",
        flush=True,
    )
    start = time.perf_counter()
    model, loss, x, y, accuracy = _trained_model(epochs, seed)
    print(f"trained in {time.perf_counter() - start:.1f} s, training accuracy {accuracy:.3f}")
    data = (x[:samples], y[:samples])

    ratios, ms, operator = _hvp_ratios(model, loss, data, repeats, rounds, block, seed)
    print(f"\n1. Hessian-vector product / gradient, P = {operator.num_parameters} parameters")
    print(f"   median ms per call: {', '.join(f'{n} {t:.2f}' for n, t in ms.items())}")
    for h in HVP_METHODS:
        print(f"   {h}: per-repeat ratios {', '.join(f'{r:.2f}' for r in ratios[h])}")

    print(f"\n2. Top {TOP_K} eigenvalues, Lanczos vs power iteration", flush=True)
    reference, rows = _eigen_comparison(operator, tols, seeds, seed, max_iterations)
    print(
        f"   reference (Lanczos, tol {REFERENCE_TOL:g}, {reference.hessian_vector_products} "
        f"products, converged {reference.converged}): "
        f"{', '.join(f'{v:.6g}' for v in reference.eigenvalues)}"
    )
    print("   tol    seed  products L / P   converged L / P   rel. diff L-P   rel. error L / P")
    for r in rows:
        print(
            f"   {r['tol']:<6g} {r['seed']:>4}  {r['lanczos']:>5} / {r['power']:<6}   "
            f"{r['lanczos_converged']!s:>5} / {r['power_converged']!s:<5}     "
            f"{r['between']:>10.2e}   {r['lanczos_error']:.1e} / {r['power_error']:.1e}"
            f"   ({r['lanczos_s']:.2f} s / {r['power_s']:.2f} s)"
        )

    print(f"\n3. Empirical NTK (traced), N = {ntk_samples}", flush=True)
    ntk_ratios, seconds, agreement = _ntk_comparison(model, x[:ntk_samples], ntk_repeats)
    print(f"   median s: jacobian {seconds['jacobian']:.3f}, loop {seconds['loop']:.3f}")
    print(f"   per-repeat ratios loop / jacobian: {', '.join(f'{r:.1f}' for r in ntk_ratios)}")

    print("\n| quantity | measured | target | met? |\n|---|---:|---:|---|")
    for h in HVP_METHODS:
        value = statistics.median(ratios[h])
        print(_row(f"HVP / gradient time, `{h}`", f"{value:.2f}x", "<= 4x", value <= HVP_TARGET))
    for tol in tols:
        subset = [r for r in rows if r["tol"] == tol]
        lanczos = statistics.median(r["lanczos"] for r in subset)
        power = statistics.median(r["power"] for r in subset)
        share = lanczos / power
        print(
            _row(
                f"HVPs for top {TOP_K}, Lanczos / power, tol {tol:g} (median of {len(subset)})",
                f"{lanczos:g} / {power:g} = {share:.2f}",
                "<= 0.33",
                share <= LANCZOS_TARGET,
            )
        )
        converged = all(r["lanczos_converged"] and r["power_converged"] for r in subset)
        between = max(r["between"] for r in subset)
        print(
            _row(
                f"same eigenvalues, tol {tol:g}: max rel. diff (all converged: {converged})",
                f"{between:.1e}",
                "",
                None,
            )
        )
    ntk = statistics.median(ntk_ratios)
    print(
        _row(
            f"NTK time loop / jacobian, N = {ntk_samples}",
            f"{ntk:.1f}x",
            ">= 10x",
            ntk >= NTK_TARGET,
        )
    )
    agree = "NTK kernels agree: max abs(K_jac - K_loop) / max abs(K)"
    print(_row(agree, f"{agreement:.1e}", "", None))


if __name__ == "__main__":
    main()
