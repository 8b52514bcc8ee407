"""`metaloss analyze`: learning rules, invariants, attraction, Hessian and NTK spectra."""

from __future__ import annotations

import click
import numpy as np

from metaloss._quiet import quiet_tensorflow
from metaloss.cli._analysis_inputs import (
    DEFAULT_LOSSES,
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
from metaloss.cli._analysis_spectra import hessian, ntk


@click.group()
def analyze():
    """Why losses regularise: learning rules, invariants, attraction, Hessian and NTK spectra.

    Every command prints a table (or JSON with --json) and can write a figure with --plot.
    """


def _float_list(ctx, param, value):
    try:
        points = [float(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"expected numbers separated by commas, got {value!r}") from None
    if not points or not all(0 < p < 1 for p in points):
        raise click.BadParameter(f"expected probabilities in (0, 1), got {value!r}")
    return points


num_classes_option = click.option(
    "--num-classes", type=click.IntRange(min=2), default=10, show_default=True
)


@analyze.command()
@losses_option(f"A loss to decompose (repeatable). Defaults to {', '.join(DEFAULT_LOSSES)}.")
@num_classes_option
@click.option(
    "--points",
    callback=_float_list,
    default="0.05,0.1,0.25,0.5,0.75,0.9,0.99",
    show_default=True,
    help="Probabilities p of the true class (the others share 1 - p).",
)
@output_options
def gamma(loss_specs, num_classes, points, as_json, plot_path):
    """The learning rule γ = ∂f/∂y of each loss, by autodiff.

    γ_target pulls the true class's probability up, γ_non-target every other class's; under
    softmax only their difference acts. Where it turns negative, the loss pushes a correct
    prediction back.

    Example: metaloss analyze gamma --loss baikal --loss cross_entropy --plot gamma.png
    """
    quiet_tensorflow()
    from metaloss.analysis.plots import learning_rule, plot_gamma_curves

    losses = resolve_losses(loss_specs or DEFAULT_LOSSES)
    payload, rows = {"num_classes": num_classes, "p": points, "losses": {}}, []
    for label, loss in losses.items():
        target, other = learning_rule(loss, points, num_classes=num_classes)
        payload["losses"][label] = {"gamma_target": target, "gamma_non_target": other}
        rows += [
            (label, p, float(t), float(o), float(t - o))
            for p, t, o in zip(points, target, other, strict=True)
        ]
    headers = ("loss", "p", "γ target", "γ non-target", "difference")
    emit(payload, as_json, headers, rows)
    if plot_path:
        plot_gamma_curves(losses, plot_path, num_classes=num_classes, title="learning rules")
        note(f"Wrote {plot_path}", as_json)


@analyze.command()
@losses_option(f"A loss to check (repeatable). Defaults to {', '.join(DEFAULT_LOSSES)}.")
@num_classes_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def invariant(loss_specs, num_classes, as_json):
    """The null-epoch check: does learning start when every output is 1/n?

    The TaylorGLO release's coded rule (γ_target ≥ (n-1)·γ_non-target, the search's
    invariant) and the weaker condition softmax needs (γ_target > γ_non-target), by autodiff.

    Example: metaloss analyze invariant --loss best_loss.json --num-classes 10
    """
    quiet_tensorflow()
    from metaloss.analysis.decomposition import invariant as null_epoch_check

    losses = resolve_losses(loss_specs or DEFAULT_LOSSES)
    payload, rows = {}, []
    for label, loss in losses.items():
        check = null_epoch_check(loss, num_classes)
        payload[label] = check.to_dict()
        rows.append(
            (
                label,
                check.gamma_target,
                check.gamma_non_target,
                "holds" if check.coded_rule else "fails",
                check.coded_margin,
                "holds" if check.softmax_rule else "fails",
                check.softmax_margin,
            )
        )
    headers = ("loss", "γ target", "γ non-target", "coded rule", "margin", "softmax", "margin")
    emit(payload, as_json, headers, rows)


@analyze.command()
@model_option()
@examples_options
@losses_option("A loss whose flow is measured (repeatable). Defaults to the model's own.")
@loss_step_option
@click.option(
    "--samples", type=click.IntRange(min=1), default=1000, show_default=True,
    help="How many examples to measure.",
)  # fmt: skip
@output_options
def attraction(
    model_path, dataset, split, seed, data_dir, loss_specs, loss_step, samples, as_json, plot_path
):
    """Which samples each loss pulls toward zero training error, and which it pushes away.

    Per sample, dH/dt: the rate of change of the output entropy under the loss's gradient flow
    in logit space (negative: pulled; positive: pushed away). Cross-entropy never pushes a
    correctly classified sample away; regularizing losses do near the one-hot target.

    Example: metaloss analyze attraction --model runs/x/model.keras --loss baikal --loss ce
    """
    quiet_tensorflow()
    from metaloss.analysis.attraction import AttractionTracker
    from metaloss.analysis.plots import plot_attraction_by_confidence

    model = load_model(model_path)
    x, y, _ = load_examples(dataset, split, samples, seed, data_dir, model)
    losses = resolve_losses(loss_specs, model, loss_step)
    payload, rows, curves = {"samples": len(x), "split": split, "losses": {}}, [], {}
    logits = None
    for label, loss in losses.items():
        tracker = AttractionTracker(x, y, loss)
        tracker.set_model(model)
        tracker.record(0)
        summary = {k: v[0] for k, v in tracker.summary().items() if k != "epoch"}
        payload["losses"][label] = summary
        rows.append(
            (
                label,
                summary["accuracy"],
                summary["pushed_away_correct"],
                summary["pushed_away"],
                summary["mean_attraction"],
            )
        )
        if logits is None:
            logits = tracker.last_logits
        probabilities = _softmax(logits)[np.arange(len(y)), y]
        curves[label] = (probabilities, tracker.pushed[0])
    headers = ("loss", "accuracy", "pushed (correct)", "pushed (all)", "mean dH/dt")
    emit(payload, as_json, headers, rows)
    if plot_path:
        plot_attraction_by_confidence(curves, plot_path, title=f"{model_path.name} on {dataset}")
        note(f"Wrote {plot_path}", as_json)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


analyze.add_command(hessian)
analyze.add_command(ntk)
