"""`metaloss attack`: robustness curves of saved models under FGSM or PGD (cleverhans)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import click

from metaloss.cli._analysis_inputs import (
    emit,
    examples_options,
    load_examples,
    load_model,
    note,
)

DEFAULT_EPS = "0,0.05,0.1,0.15,0.2,0.25,0.3"
_NORMS = {"inf": math.inf, "1": 1, "2": 2}


def _parse_eps(ctx, param, value: str) -> list[float]:
    try:
        eps = [float(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated numbers, got {value!r}") from None
    if not eps or not all(math.isfinite(e) and e >= 0 for e in eps):
        raise click.BadParameter(f"expected finite numbers >= 0, got {value!r}")
    return eps


def _labels(paths: list[Path]) -> list[str]:
    """``runs/x/model.keras`` -> ``x``, ``a.keras`` -> ``a``; repeated labels get a suffix."""
    labels = []
    for path in paths:
        label = path.parent.name if path.stem == "model" and path.parent.name else path.stem
        labels.append(label if label not in labels else f"{label} ({len(labels) + 1})")
    return labels


@click.command()
@click.option(
    "--model",
    "model_paths",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    multiple=True,
    required=True,
    help="A saved .keras model; repeat for one curve per model.",
)
@examples_options
@click.option(
    "--samples",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="Examples attacked (drawn with --seed from --split).",
)
@click.option(
    "--eps",
    callback=_parse_eps,
    default=DEFAULT_EPS,
    show_default=True,
    help="Perturbation sizes, comma-separated, in input units (pixels in [0, 1]).",
)
@click.option("--attack", type=click.Choice(["fgsm", "pgd"]), default="fgsm", show_default=True)
@click.option(
    "--steps", type=click.IntRange(min=1), default=10, show_default=True, help="PGD iterations."
)
@click.option(
    "--step-size",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="PGD step; at most the smallest non-zero ε. Defaults to 2.5 ε / steps.",
)
@click.option("--norm", type=click.Choice(sorted(_NORMS)), default="inf", show_default=True)
@click.option(
    "--gradient-loss",
    default="cross_entropy",
    show_default=True,
    help="The loss whose input gradient drives the attack: a loss name or spec, or 'own' for "
    "each model's compiled loss.",
)
@click.option(
    "--clip/--no-clip",
    default=None,
    help="Clip adversarial inputs to [0, 1]. Defaults to on for images, off for vector data.",
)
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("runs/attack"),
    show_default=True,
    help="Directory for robustness.png and robustness.json.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print JSON (for machines) instead of a table."
)
def attack(
    model_paths,
    dataset,
    split,
    seed,
    data_dir,
    samples,
    eps,
    attack,
    steps,
    step_size,
    norm,
    gradient_loss,
    clip,
    output,
    as_json,
):
    """Accuracy of saved models under adversarial attack, for a grid of perturbation sizes ε.

    Prints a table (one row per model, one column per ε) and writes a robustness-curve PNG.

    Example: metaloss attack --model runs/ce/model.keras --model runs/baikal/model.keras
    --dataset digits --eps 0,0.05,0.1,0.15,0.2,0.25,0.3
    """
    positive = [e for e in eps if e > 0]
    if attack == "pgd" and step_size is not None and positive and step_size > min(positive):
        raise click.BadParameter(
            f"a PGD step ({step_size}) larger than the smallest ε ({min(positive)})",
            param_hint="--step-size",
        )
    from metaloss.analysis.plots import plot_robustness_curves
    from metaloss.analysis.robustness import default_clip, robust_accuracy

    curves = {}
    for label, path in zip(_labels(list(model_paths)), model_paths, strict=True):
        model = load_model(path)
        x, y, _ = load_examples(dataset, split, samples, seed, data_dir, model=model)
        if gradient_loss == "own" and getattr(model, "loss", None) is None:
            raise click.BadParameter(
                f"{path} was saved without a compiled loss", param_hint="--gradient-loss"
            )
        note(f"Attacking {label} ({attack.upper()}, {len(x)} {split} examples)...", as_json)
        try:
            curves[label] = robust_accuracy(
                model,
                (x, y),
                attack=attack,
                eps=eps,
                norm=_NORMS[norm],
                gradient_loss=model.loss if gradient_loss == "own" else gradient_loss,
                steps=steps,
                step_size=step_size,
                clip=default_clip(x.shape[1:]) if clip is None else ((0.0, 1.0) if clip else None),
                seed=seed,
            )
        except ValueError as error:
            raise click.UsageError(str(error)) from None
    title = f"{attack.upper()} ({norm}-norm) on {dataset} {split}" + (
        f", {steps} steps" if attack == "pgd" else ""
    )
    output.mkdir(parents=True, exist_ok=True)
    figure = plot_robustness_curves(curves, output / "robustness.png", title=title)
    payload = {
        "attack": attack,
        "norm": norm,
        "steps": steps if attack == "pgd" else None,
        "dataset": dataset,
        "split": split,
        "samples": samples,
        "gradient_loss": gradient_loss,
        "eps": eps,
        "accuracy": {label: [curve[e] for e in eps] for label, curve in curves.items()},
    }
    (output / "robustness.json").write_text(json.dumps(payload, indent=2) + "\n")
    headers = ["model", *(f"eps={e:g}" for e in eps)]
    rows = [[label, *(curve[e] for e in eps)] for label, curve in curves.items()]
    emit(payload, as_json, headers, rows)
    note(f"Wrote {figure} and {output / 'robustness.json'}", as_json)
