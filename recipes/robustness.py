"""Adversarial robustness of TaylorGLO and Baikal against cross-entropy, across the ε grid.

Reproduces the regularization paper's robustness claim: networks trained with a metalearned loss
keep more accuracy than cross-entropy networks under FGSM attacks of growing size ε. Each loss
is trained with seeds 0..N-1 (same data order and initial weights per seed); every trained model
is then attacked with FGSM and PGD (cleverhans, untargeted, ℓ∞, true labels) at each ε of the
grid {0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3}. Attacks work in pixel space and adversarial images are
clipped to [0, 1] (:func:`metaloss.analysis.robustness.default_clip`; no clipping for vector data
such as MNIST-1D); the models normalise their inputs themselves. The attack follows the gradient
of each model's own training loss, as the paper's code did, *and* of cross-entropy, as
``metaloss attack`` does (``--gradient-loss`` picks one or both): a loss can game an attack that
follows its own gradient (a flat loss hides the direction that hurts), so the cross-entropy
attack, the same for every model, says whether a gain survives a loss-agnostic attacker. PGD
takes ``--pgd-steps`` steps of 2.5 ε / steps from a random start.

Full scale (the defaults): CIFAR-10 read from ``--data-dir`` (or the Keras cache, downloading if
allowed) with the 45k/5k validation split; All-CNN-C with the TaylorGLO papers' schedule for it
(SGD, momentum 0.9, batch 128, learning rate 0.01 ×0.1 at epochs 200, 250 and 300, 350 epochs,
weight decay 1e-3; the regularization paper, arXiv 2010.00788); 5 seeds; all 10 000 test
images attacked, PGD with 10 steps.
Not known exactly: the network and training budget of the paper's robustness experiments
(All-CNN-C with its paper schedule is this recipe's choice), how many test images were attacked,
and whether its ε sweep used PGD (FGSM is the paper's attack; PGD is added as the stronger one).
The paper evolved its own TaylorGLO loss; by default the TaylorGLO arm trains with the loss
shipped with the TaylorGLO reference code (written to ``taylor_glo_loss.json``); pass a search's
``best_loss.json`` with ``--taylorglo``.

``--smoke``: scikit-learn's digits, an MLP, 3 epochs of SGD at a constant 0.05, 2 seeds, the whole
test set (359 images) attacked at ε = 0, 0.1, 0.2, 0.3, PGD with 3 steps; about 30 s on 2 CPU
cores. Explicit options win.

Writes ``settings.json``, ``taylor_glo_loss.json`` (the TaylorGLO loss trained with),
``results.json`` and ``results.md`` (clean test accuracy compared by Welch's t-test, and per
attack gradient and attack a loss × ε table of mean ± std over seeds with Welch p-values against
cross-entropy), ``clean_test_accuracy.png``, ``clean_validation_accuracy.png``,
``robustness_<attack>_<gradient>.png`` (mean curves with ± std bands), and one run directory per
loss and seed (``<loss>/seed<k>``: the model, its files and ``robustness.json``, the curves
computed once).
Rerun the same command to resume: finished runs are neither retrained nor attacked again.

References:
    Gonzalez & Miikkulainen, *Effective Regularization Through Loss-Function Metalearning*,
    arXiv 2010.00788; *Optimizing Loss Functions Through Multivariate Taylor Polynomial
    Parameterization*, arXiv 2002.00059 (GECCO 2021); *Improved Training Speed, Accuracy, and
    Data Utilization Through Loss Function Optimization*, arXiv 1905.11528 (Baikal).
    Goodfellow, Shlens & Szegedy, *Explaining and Harnessing Adversarial Examples*,
    arXiv 1412.6572 (FGSM); Madry et al., *Towards Deep Learning Models Resistant to Adversarial
    Attacks*, arXiv 1706.06083 (PGD).
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path

import click

from metaloss._quiet import quiet_tensorflow
from metaloss.cli.options import LossSpec, ModelSpec, dataset_option
from metaloss.cli.recipe_tools import apply_smoke, command_line, float_list, recipe_options
from metaloss.experiments import (
    comparison_section,
    prepare_output,
    run_printer,
    training_run,
    write_results,
)

SMOKE = {
    "dataset": "digits",
    "model": "mlp",
    "epochs": 3,
    "batch_size": 64,
    "learning_rate": 0.05,
    "schedule": "constant",
    "weight_decay": 0.0,
    "seeds": 2,
    "eps": [0.0, 0.1, 0.2, 0.3],
    "pgd_steps": 3,
}
ATTACKS = ("fgsm", "pgd")
BASELINE = "cross_entropy"
ROBUSTNESS_FILE = "robustness.json"
TAYLOR_GLO_FILE = "taylor_glo_loss.json"
SCHEDULES = ("allcnn_c", "alexnet", "constant", "resnet", "wrn")


def _attack_list(ctx, param, value):
    if value is None or isinstance(value, list):
        return value
    names = [v.strip().lower() for v in value.split(",") if v.strip()]
    unknown = [n for n in names if n not in ATTACKS]
    if not names or unknown:
        raise click.BadParameter(f"expected some of {', '.join(ATTACKS)}, got {value!r}")
    return list(dict.fromkeys(names))


def _eps_list(ctx, param, value):
    eps = float_list(ctx, param, value)
    if eps is not None and not all(math.isfinite(e) and e >= 0 for e in eps):
        raise click.BadParameter(f"expected finite numbers >= 0, got {value!r}")
    return None if eps is None else list(dict.fromkeys(eps))


def _check_model(dataset: str, model: str) -> None:
    """A usage error naming ``--model`` when it cannot be built for ``dataset`` (bad arguments)."""
    quiet_tensorflow()
    from metaloss.data.catalog import check_name
    from metaloss.losses._spec import parse_spec
    from metaloss.models import get

    info = check_name(dataset)
    name, kwargs = parse_spec(model)
    try:
        get(name, info.input_shape, info.num_classes, **kwargs)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="'--model'") from None


def _taylor_glo_loss(p: dict, output: Path) -> str:
    """Writes the TaylorGLO arm's loss to ``taylor_glo_loss.json`` and returns that path.

    A different loss than the one the finished runs there were trained with (a best_loss.json
    that changed since) is a usage error, like any other changed setting.
    """
    from metaloss import losses

    if p["taylorglo"] is None:
        loss = losses.TaylorGLO.from_reference_code(losses.REFERENCE_CODE_EXAMPLE, from_logits=True)
    else:
        loss = losses.get(p["taylorglo"], from_logits=True)
    path = output / TAYLOR_GLO_FILE
    config = losses.serialize(loss)
    if path.is_file() and json.loads(path.read_text()) != json.loads(json.dumps(config)):
        raise click.UsageError(
            f"Invalid value for '--taylorglo': the loss differs from {path}, which the runs in "
            f"{output} were trained with. Pass --overwrite to start afresh."
        )
    losses.save(loss, path)
    return str(path)


def _attack_config(p: dict) -> dict:
    return {
        "attacks": p["attacks"],
        "eps": p["eps"],
        "pgd_steps": p["pgd_steps"],
        "samples": p["samples"],
        "gradient_losses": list(p["gradient_loss"]),
        "norm": "inf",
    }


def _test_examples(p: dict):
    """The attacked test examples ``(x, class ids)``: a fixed draw, the same for every model."""
    import numpy as np

    from metaloss.data import load

    data = load(p["dataset"], validation_split=p["validation_split"], data_dir=p["data_dir"])
    x, y = data.arrays("test")
    if p["samples"] < len(y):
        keep = np.sort(np.random.default_rng(0).permutation(len(y))[: p["samples"]])
        x, y = x[keep], y[keep]
    return x, y


def _robustness(directory: Path, seed: int, p: dict, examples) -> dict:
    """The run's robustness curves: read from its robustness.json, or computed and saved there.

    ``examples()`` gives the test examples to attack (loaded only when something is computed).
    """
    path = directory / ROBUSTNESS_FILE
    config = _attack_config(p)
    if path.is_file():
        saved = json.loads(path.read_text())
        if saved.get("config") == config:
            return saved
    import keras

    from metaloss import losses
    from metaloss.analysis.robustness import default_clip, robust_accuracy
    from metaloss.training.experiment import LOSS_FILE, MODEL_FILE

    model = keras.saving.load_model(directory / MODEL_FILE)
    x, y = examples()
    accuracy = {}
    for gradient in p["gradient_loss"]:
        gradient_loss = (
            "cross_entropy"
            if gradient == "cross_entropy"
            else losses.get(directory / LOSS_FILE, from_logits=True)
        )
        accuracy[gradient] = {}
        for attack in p["attacks"]:
            curve = robust_accuracy(
                model,
                (x, y),
                attack=attack,
                eps=p["eps"],
                gradient_loss=gradient_loss,
                steps=p["pgd_steps"],
                clip=default_clip(x.shape[1:]),
                seed=seed,
            )
            accuracy[gradient][attack] = [curve[e] for e in p["eps"]]
    payload = {
        "config": config,
        "examples": len(y),
        "clip": default_clip(x.shape[1:]),
        "seed": seed,
        "accuracy": accuracy,
    }
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(payload, indent=2) + "\n")
    partial.replace(path)
    return payload


def _summaries(curves: dict, p: dict) -> dict:
    """gradient -> attack -> loss -> per-ε mean, std, values per seed and Welch p against CE."""
    from metaloss.analysis.statistics import summarize, welch_t_test

    result = {}
    for gradient in p["gradient_loss"]:
        result[gradient] = {}
        for attack in p["attacks"]:
            by_loss = {}
            for label, runs in curves.items():
                per_seed = [run["accuracy"][gradient][attack] for run in runs]
                per_eps = [[curve[i] for curve in per_seed] for i in range(len(p["eps"]))]
                stats = [summarize(values) for values in per_eps]
                entry = {
                    "mean": [s.mean for s in stats],
                    "std": [s.std for s in stats],
                    "n": len(runs),
                    "per_seed": per_seed,
                }
                if label != BASELINE:
                    baseline = [run["accuracy"][gradient][attack] for run in curves[BASELINE]]
                    entry["p_vs_baseline"] = [
                        welch_t_test(values, [curve[i] for curve in baseline]).p_value
                        if len(values) > 1 and len(baseline) > 1
                        else None
                        for i, values in enumerate(per_eps)
                    ]
                by_loss[label] = entry
            result[gradient][attack] = by_loss
    return result


def _by_eps(eps: list[float], values: list[float]) -> dict[float, float]:
    return dict(zip(eps, values, strict=True))


GRADIENT_NAMES = {"cross_entropy": "cross-entropy", "own": "each model's own loss"}


def _notes(summaries: dict, figures: dict, p: dict, examples: int) -> list[str]:
    from metaloss.analysis.statistics import markdown_table

    headers = ["loss", *(f"ε={e:g}" for e in p["eps"])]
    notes = []
    for gradient, by_attack in summaries.items():
        for attack, by_loss in by_attack.items():
            steps = f", {p['pgd_steps']} steps" if attack == "pgd" else ""
            notes += [
                f"**{attack.upper()}, gradient of {GRADIENT_NAMES[gradient]}** (ℓ∞{steps}, "
                f"{examples} test examples): accuracy, mean ± std over seeds.",
                markdown_table(
                    headers,
                    [
                        [label, *map("{:.4f} ± {:.4f}".format, e["mean"], e["std"])]
                        for label, e in by_loss.items()
                    ],
                ),
                f"p (Welch's t-test) against {BASELINE} at each ε:",
                markdown_table(
                    headers,
                    [
                        [label, *(None if v is None else f"{v:.3g}" for v in e["p_vs_baseline"])]
                        for label, e in by_loss.items()
                        if label != BASELINE
                    ],
                ),
                f"![{attack.upper()} robustness, {gradient} gradient]({figures[gradient][attack]})",
            ]
    return notes


@click.command()
@recipe_options("robustness")
@dataset_option(default="cifar10")
@click.option("--model", type=ModelSpec(), default="allcnn_c", show_default=True)
@click.option(
    "--taylorglo",
    type=LossSpec(),
    default=None,
    help="The TaylorGLO arm's loss: a spec or a JSON file such as a search's best_loss.json. "
    "Defaults to the loss shipped with the TaylorGLO reference code.",
)
@click.option(
    "--attacks", callback=_attack_list, default="fgsm,pgd", show_default=True, help="fgsm, pgd."
)
@click.option(
    "--eps",
    callback=_eps_list,
    default="0,0.05,0.1,0.15,0.2,0.25,0.3",
    show_default=True,
    help="Perturbation sizes in pixel units ([0, 1] images).",
)
@click.option("--pgd-steps", type=click.IntRange(min=1), default=10, show_default=True)
@click.option(
    "--samples",
    type=click.IntRange(min=1),
    default=10_000,
    show_default=True,
    help="Test examples attacked (the whole test set when it has no more); a fixed draw, the "
    "same for every model.",
)
@click.option(
    "--gradient-loss",
    type=click.Choice(list(GRADIENT_NAMES)),
    multiple=True,
    default=("own", "cross_entropy"),
    show_default=True,
    help="The loss whose input gradient drives the attacks (repeatable): each model's own (the "
    "paper's choice) and cross-entropy (the same attacker for every model).",
)
@click.option("--epochs", type=click.IntRange(min=1), default=350, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=128, show_default=True)
@click.option(
    "--lr",
    "learning_rate",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Initial SGD learning rate. Defaults to the schedule's (0.01 for allcnn_c).",
)
@click.option(
    "--momentum", type=click.FloatRange(0, 1, max_open=True), default=0.9, show_default=True
)
@click.option("--weight-decay", type=click.FloatRange(min=0), default=1e-3, show_default=True)
@click.option("--schedule", type=click.Choice(SCHEDULES), default="allcnn_c", show_default=True)
@click.option(
    "--validation-split", type=click.FloatRange(0, 1, max_open=True), default=0.1, show_default=True
)
@click.option("--data-dir", type=click.Path(file_okay=False), default=None)
@click.option("--jit-compile/--no-jit-compile", default=None)
def main(**_):
    """TaylorGLO and Baikal vs cross-entropy under FGSM and PGD across an ε grid."""
    ctx = click.get_current_context()
    p = apply_smoke(ctx, SMOKE)
    p["gradient_loss"] = list(dict.fromkeys(p["gradient_loss"]))
    _check_model(p["dataset"], p["model"])
    output = p["output"]
    settings = prepare_output(output, p, overwrite=p["overwrite"])
    from metaloss.training import run_seeds, seed_directory

    arms_losses = {
        BASELINE: "cross_entropy",
        "baikal": "baikal",
        "taylor_glo": _taylor_glo_loss(p, output),
    }
    click.echo(f"Training {', '.join(arms_losses)}: {p['epochs']} epochs, {p['seeds']} seeds")
    examples = functools.cache(functools.partial(_test_examples, p))
    arms, curves = {}, {}
    for label, loss in arms_losses.items():
        run = training_run(p, p["dataset"], p["model"], loss, optimizer="sgd")
        try:
            arms[label] = run_seeds(
                run, range(p["seeds"]), output / label, on_result=run_printer(label)
            )
        except FileNotFoundError as error:
            raise click.ClickException(str(error)) from None
        click.echo(f"  attacking {label} ({', '.join(a.upper() for a in p['attacks'])})")
        curves[label] = [
            _robustness(seed_directory(output / label, r.seed), r.seed, p, examples)
            for r in arms[label]
        ]

    from metaloss.analysis.plots import plot_robustness_curves

    summaries = _summaries(curves, p)
    attacked = curves[BASELINE][0]["examples"]
    figures = {}
    for gradient, by_attack in summaries.items():
        figures[gradient] = {}
        for attack, by_loss in by_attack.items():
            steps = f", {p['pgd_steps']} steps" if attack == "pgd" else ""
            figures[gradient][attack] = plot_robustness_curves(
                {label: _by_eps(p["eps"], e["mean"]) for label, e in by_loss.items()},
                output / f"robustness_{attack}_{gradient}.png",
                title=f"{attack.upper()}{steps}, {gradient} gradient, on {p['dataset']} / "
                f"{p['model']}: mean ± std",
                bands={label: _by_eps(p["eps"], e["std"]) for label, e in by_loss.items()},
            ).name
    section = comparison_section(
        output,
        title=f"Clean test accuracy and robustness on {p['dataset']} / {p['model']}",
        arms=arms,
        baseline=BASELINE,
        name="clean",
        extra={
            "robustness": {
                **_attack_config(p),
                "examples": attacked,
                "clip": curves[BASELINE][0]["clip"],
                "figures": figures,
                "curves": summaries,
            }
        },
        notes=_notes(summaries, figures, p, attacked),
    )
    write_results(
        output,
        title=f"Adversarial robustness: TaylorGLO and Baikal vs cross-entropy, {p['dataset']} / "
        f"{p['model']}, {p['epochs']} epochs",
        command=command_line(ctx, "robustness.py"),
        settings=settings,
        sections=[section],
    )


if __name__ == "__main__":
    main()
