"""`metaloss analyze hessian` and `metaloss analyze ntk`: spectra of a saved model."""

from __future__ import annotations

import functools
import sys

import click
import numpy as np

from metaloss._quiet import quiet_tensorflow
from metaloss.cli._analysis_inputs import (
    emit,
    examples_options,
    load_examples,
    load_model,
    loss_step_option,
    losses_option,
    model_option,
    note,
    output_options,
    resolve_losses,
)


def _with_progress(operator, label: str, length: int, compute):
    """``compute()`` under a click progress bar (stderr) advanced once per Hessian product."""
    with click.progressbar(length=length, label=label, file=sys.stderr) as bar:
        operator.on_product = functools.partial(bar.update, 1)
        try:
            return compute()
        finally:
            operator.on_product = None


@click.command()
@model_option()
@examples_options
@losses_option("The training loss (repeatable). Defaults to the model's own.")
@loss_step_option
@click.option(
    "--samples", type=click.IntRange(min=1), default=512, show_default=True,
    help="Examples the loss averages over.",
)  # fmt: skip
@click.option("--top-k", type=click.IntRange(min=1), default=3, show_default=True)
@click.option(
    "--method",
    type=click.Choice(["lanczos", "power"]),
    default="lanczos",
    show_default=True,
    help="Lanczos needs far fewer Hessian-vector products than power iteration.",
)
@click.option(
    "--tol", type=click.FloatRange(min=0, min_open=True), default=1e-4, show_default=True,
    help="Relative tolerance of the eigenvalues.",
)  # fmt: skip
@click.option("--max-iterations", type=click.IntRange(min=1), default=100, show_default=True)
@click.option(
    "--trace-samples", type=click.IntRange(min=0), default=0, show_default=True,
    help="Rademacher probes for a Hutchinson trace estimate (0: no trace).",
)  # fmt: skip
@click.option(
    "--density-steps", type=click.IntRange(min=0), default=0, show_default=True,
    help="Lanczos steps of a spectral density (stochastic Lanczos quadrature; 0: none). "
    "--plot draws it, with 80 steps unless given.",
)  # fmt: skip
@output_options
def hessian(
    model_path, dataset, split, seed, data_dir, loss_specs, loss_step, samples, top_k, method, tol,
    max_iterations, trace_samples, density_steps, as_json, plot_path,
):  # fmt: skip
    """Top eigenvalues, trace and spectral density of the training loss's Hessian.

    Everything runs on Hessian-vector products (forward-over-reverse autodiff), never on the
    dense matrix, so it scales to large networks.

    Example: metaloss analyze hessian --model runs/x/model.keras --top-k 5 --trace-samples 50
    """
    quiet_tensorflow()
    from metaloss.analysis.attraction import labels_for
    from metaloss.analysis.hessian import HessianOperator
    from metaloss.analysis.plots import plot_hessian_density

    model = load_model(model_path)
    x, y, num_classes = load_examples(dataset, split, samples, seed, data_dir, model)
    losses = resolve_losses(loss_specs, model, loss_step)
    if plot_path and not density_steps:
        density_steps = 80
    payload, rows, densities = {"samples": len(x), "split": split, "losses": {}}, [], {}
    for label, loss in losses.items():
        operator = HessianOperator(model, loss, (x, labels_for(loss, y, num_classes)))
        result = _with_progress(
            operator,
            f"{label}: top {top_k} ({method})",
            max_iterations * top_k,
            lambda operator=operator: operator.top_eigenvalues(
                top_k, method, tol=tol, max_iterations=max_iterations, seed=seed
            ),
        )
        record = {
            "eigenvalues": result.eigenvalues,
            "converged": result.converged,
            "hessian_vector_products": result.hessian_vector_products,
            "num_parameters": operator.num_parameters,
        }
        trace_text = None
        if trace_samples:
            estimate = _with_progress(
                operator,
                f"{label}: trace",
                trace_samples,
                lambda operator=operator: operator.trace(max(2, trace_samples), seed=seed),
            )
            record["trace"] = {
                "estimate": estimate.trace,
                "standard_error": estimate.standard_error,
            }
            trace_text = f"{estimate.trace:.4g} ± {estimate.standard_error:.2g}"
        if density_steps:
            density = _with_progress(
                operator,
                f"{label}: density",
                density_steps,
                lambda operator=operator: operator.density(1, density_steps, seed=seed),
            )
            record["density"] = {"nodes": density.nodes, "weights": density.weights}
            densities[label] = density
        payload["losses"][label] = record
        values = " ".join(f"{v:.4g}" for v in result.eigenvalues)
        rows.append((label, values, trace_text, result.hessian_vector_products, result.converged))
    headers = ("loss", f"top {top_k} eigenvalues", "trace", "products", "converged")
    emit(payload, as_json, headers, rows)
    if plot_path:
        low = min(float(d.nodes.min()) for d in densities.values())
        high = max(float(d.nodes.max()) for d in densities.values())
        pad = 0.05 * (high - low or 1.0)
        grid = np.linspace(low - pad, high + pad, 400)
        sigma = (high - low or 1.0) / 100
        curves = {label: d.curve(grid, sigma) for label, d in densities.items()}
        plot_hessian_density(grid, curves, plot_path, title=f"Hessian spectrum: {model_path.name}")
        note(f"Wrote {plot_path}", as_json)


@click.command()
@model_option()
@examples_options
@click.option(
    "--samples", type=click.IntRange(min=2), default=256, show_default=True,
    help="Inputs of the kernel (it is samples × samples).",
)  # fmt: skip
@click.option(
    "--full", is_flag=True,
    help="The full (samples·classes)² kernel instead of the one traced over classes.",
)  # fmt: skip
@click.option(
    "--chunk-size", type=click.IntRange(min=1), default=None,
    help="Samples per Jacobian chunk (bounds memory). Defaults to a size that fits.",
)  # fmt: skip
@output_options
def ntk(model_path, dataset, split, seed, data_dir, samples, full, chunk_size, as_json, plot_path):
    """The empirical neural tangent kernel's spectrum: λ_max, λ_min, condition number.

    Example: metaloss analyze ntk --model runs/x/model.keras --samples 256 --plot ntk.png
    """
    quiet_tensorflow()
    from metaloss.analysis.ntk import eigenvalues, empirical_ntk, ntk_summary
    from metaloss.analysis.plots import plot_ntk_spectrum

    model = load_model(model_path)
    x, _, _ = load_examples(dataset, split, samples, seed, data_dir, model)
    note(f"Computing the empirical NTK on {len(x)} {split} examples...", True)
    kernel = empirical_ntk(model, x, trace_classes=not full, chunk_size=chunk_size)
    summary = ntk_summary(kernel)
    spectrum = eigenvalues(kernel)
    payload = {**summary, "traced": not full, "split": split, "eigenvalues": spectrum}
    rows = [(key, value) for key, value in summary.items()]
    emit(payload, as_json, ("quantity", "value"), rows)
    if plot_path:
        plot_ntk_spectrum({model_path.name: spectrum}, plot_path, title="empirical NTK spectrum")
        note(f"Wrote {plot_path}", as_json)
