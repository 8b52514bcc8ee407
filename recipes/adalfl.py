"""AdaLFL (online loss-function learning) against ML3 and cross-entropy, per dataset and model.

Reproduces the AdaLFL paper's main comparison on the datasets of that paper that metaloss has:
cross-entropy, ML3 (a loss network learned offline, then frozen) and AdaLFL (the same offline
phase, then the loss learned online, one meta-step after every base step), with the same data,
data order, initial weights, optimizer and budget. ``--methods`` picks the arms (default
``ce,ml3,adalfl``). Each task (``--task dataset:model``, repeatable) is one comparison; every arm
runs with seeds 0..N-1 and is compared by test accuracy (Welch's t-test) with cross-entropy, and
AdaLFL with ML3 (what the online phase adds).

Full scale (the defaults): MNIST with the zoo's ``mlp``, CIFAR-10 with ``allcnn_c`` (All-CNN-C,
one of the paper's CIFAR-10 networks) and CIFAR-100 with ``wrn:depth=28,width=10`` (WRN-28-10);
the paper also runs logistic regression, VGG-16, ResNet-18, SqueezeNet, PyramidNet and SVHN,
which metaloss does not have. 2500 offline initialisation steps (the paper's), then 100 epochs,
batch 128, 5 seeds, a 10% validation split; files from ``--data-dir`` (or the Keras cache,
downloading if allowed). Not known exactly: the paper's training budgets (it counts gradient
steps), its MLP's sizes and its base optimizer's settings. The base optimizer defaults to Adam at
1e-3, as ``metaloss online`` does, for both arms: with SGD and heavy-ball momentum the one-step
meta-gradient keeps steepening the learned loss and training collapses (README, "Online loss
learning: AdaLFL"); ``--optimizer sgd`` uses momentum 0 unless ``--momentum`` says otherwise.

``--smoke``: one task, scikit-learn's digits with an MLP, 5 offline steps, 2 epochs, batch 64,
2 seeds; about 25 s on 2 CPU cores. Explicit options win.

Writes ``settings.json``, ``results.json`` and ``results.md`` (one section per task), per task
``<task>_test_accuracy.png``, ``<task>_validation_accuracy.png`` and ``<task>_learned_loss.png``
(the learned loss of the seed-0 AdaLFL run, or ML3's without AdaLFL, at up to 6 points of
training), and one run directory per task, arm and seed (``<task>/adalfl/seed<k>`` and
``<task>/ml3/seed<k>`` with ``learned_loss.json``, ``snapshots.json`` and the model;
``<task>/cross_entropy/seed<k>``). Each section's JSON holds ``adalfl_vs_ml3`` (difference and
Welch's p) when both learned arms ran. Rerun the same command to
resume: finished runs are not repeated, and an interrupted run (AdaLFL or cross-entropy)
continues from its checkpoints to the result it would have had.

References:
    Raymond, Chen, Xue & Zhang, *Online Loss Function Learning*, arXiv 2301.13247 (TMLR 2025 as
    *Meta-Learning Adaptive Loss Functions*); Bechtle et al., *Meta-Learning via Learned Loss*,
    arXiv 1906.05374 (ML3, the offline initialisation).
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

import click

from metaloss._quiet import quiet_tensorflow
from metaloss.cli.options import data_split_options, optimizer_options
from metaloss.cli.recipe_tools import apply_smoke, command_line, recipe_options
from metaloss.data.catalog import DATASETS
from metaloss.experiments import comparison_section, prepare_output, run_printer, write_results

DEFAULT_TASKS = ("mnist:mlp", "cifar10:allcnn_c", "cifar100:wrn:depth=28,width=10")
SMOKE = {
    "tasks": ["digits:mlp"],
    "epochs": 2,
    "init_steps": 5,
    "batch_size": 64,
    "seeds": 2,
}
BASELINE = "cross_entropy"
#: ``--methods`` names and the arms they run (``ce`` is cross-entropy).
METHOD_ARMS = {"ce": BASELINE, "ml3": "ml3", "adalfl": "adalfl"}


def _methods(ctx, param, value):
    """Click callback: ``ce,ml3,adalfl`` -> the arms, in that order, each once."""
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in METHOD_ARMS]
    if unknown or not names:
        raise click.BadParameter(
            f"expected a comma-separated list of {list(METHOD_ARMS)}, got {value!r}",
            ctx=ctx,
            param=param,
        )
    return list(dict.fromkeys(METHOD_ARMS[name] for name in names))


def _model_error(dataset: str, model: str) -> str | None:
    """Why ``model`` cannot be built for ``dataset`` (an unknown name or argument), or `None`."""
    quiet_tensorflow()
    from metaloss.data.catalog import check_name
    from metaloss.losses._spec import parse_spec
    from metaloss.models import get

    info = check_name(dataset)
    try:
        name, kwargs = parse_spec(model)
        get(name, info.input_shape, info.num_classes, **kwargs)
    except ValueError as error:
        return str(error)
    return None


def _tasks(ctx, param, value):
    """Click callback: checks each ``dataset:model`` (by building the model) and lists them."""
    tasks = []
    for task in value:
        dataset, _, model = task.partition(":")
        if dataset not in DATASETS or not model:
            raise click.BadParameter(
                f"expected DATASET:MODEL with DATASET one of {sorted(DATASETS)}, got {task!r}",
                ctx=ctx,
                param=param,
            )
        # The defaults are known to build (and --smoke replaces them): check given tasks only.
        given = ctx.get_parameter_source(param.name) != click.core.ParameterSource.DEFAULT
        error = _model_error(dataset, model) if given else None
        if error is not None:
            raise click.BadParameter(f"{task!r}: {error}", ctx=ctx, param=param)
        if task in tasks:
            raise click.BadParameter(f"{task!r} is given twice", ctx=ctx, param=param)
        tasks.append(task)
    return tasks


def task_directory(task: str) -> str:
    """A file-name-safe name for a task: ``cifar100:wrn:depth=28,width=10`` ->
    ``cifar100_wrn_depth=28_width=10``."""
    return re.sub(r"[^A-Za-z0-9.=-]+", "_", task)


def _snapshots_figure(run, path, title):
    """The learned-loss figure of one AdaLFL run, from its snapshots.json."""
    from metaloss.analysis.plots import plot_learned_loss_snapshots
    from metaloss.search import Snapshot
    from metaloss.search.online_experiment import SNAPSHOTS_FILE

    snapshots = json.loads((Path(run) / SNAPSHOTS_FILE).read_text())
    return plot_learned_loss_snapshots([Snapshot(**s) for s in snapshots], path, title=title)


@click.command()
@recipe_options("adalfl")
@click.option(
    "--task",
    "tasks",
    multiple=True,
    default=DEFAULT_TASKS,
    callback=_tasks,
    show_default=True,
    help="DATASET:MODEL, e.g. cifar10:allcnn_c or cifar100:wrn:depth=28,width=10; repeat for "
    "several, each a section of the results.",
)
@click.option(
    "--methods",
    default="ce,ml3,adalfl",
    callback=_methods,
    show_default=True,
    help="The arms, comma-separated: ce (cross-entropy), ml3 (learned offline, then frozen), "
    "adalfl (learned offline, then online).",
)
@click.option("--epochs", type=click.IntRange(min=1), default=100, show_default=True)
@click.option(
    "--init-steps",
    type=click.IntRange(min=0),
    default=2500,
    show_default=True,
    help="Offline (ML3-style) initialisation steps of the learned loss; the paper's 2500.",
)
@optimizer_options(
    optimizer="adam",
    momentum=0.0,
    lr_help="Base learning rate of both arms. Defaults to 0.001 (Adam) or 0.1 (SGD).",
    momentum_help="SGD momentum. With 0.9 the one-step meta-gradient keeps steepening the "
    "learned loss until training degrades (see the README).",
)
@click.option(
    "--meta-lr",
    type=click.FloatRange(min=0),
    default=1e-3,
    show_default=True,
    help="Adam learning rate of the loss network (the paper's 1e-3).",
)
@data_split_options
@click.option("--jit-compile/--no-jit-compile", default=None)
def main(**_):
    """AdaLFL vs ML3 vs cross-entropy, one comparison per --task."""
    ctx = click.get_current_context()
    p = apply_smoke(ctx, SMOKE)
    output = p["output"]
    settings = prepare_output(output, p, overwrite=p["overwrite"])
    from metaloss.search.online_experiment import online_experiment
    from metaloss.training import run_seeds, seed_directory, train_experiment

    common = {
        "epochs": p["epochs"],
        "batch_size": p["batch_size"],
        "optimizer": p["optimizer"],
        "learning_rate": p["lr"],
        "momentum": p["momentum"],
        "weight_decay": p["weight_decay"],
        "validation_split": p["validation_split"],
        "subset_fraction": p["subset_fraction"],
        "data_dir": p["data_dir"],
        "jit_compile": p["jit_compile"],
        "verbose": p["verbose"],
    }
    sections = []
    labels = p["methods"]
    baseline = BASELINE if BASELINE in labels else labels[0]
    for task in p["tasks"]:
        dataset, _, model = task.partition(":")
        name = task_directory(task)
        click.echo(
            f"{dataset} / {model}: {', '.join(labels)} ({p['init_steps']} offline steps), "
            f"{p['epochs']} epochs, {p['seeds']} seeds"
        )
        learned = functools.partial(
            online_experiment,
            dataset,
            model,
            resume=True,
            init_steps=p["init_steps"],
            meta_learning_rate=p["meta_lr"],
            **common,
        )
        runs = {
            BASELINE: functools.partial(
                train_experiment, dataset, model, "cross_entropy", resume=True, **common
            ),
            "ml3": functools.partial(learned, method="ml3"),
            "adalfl": functools.partial(learned, method="adalfl"),
        }
        try:
            arms = {
                label: run_seeds(
                    runs[label],
                    range(p["seeds"]),
                    output / name / label,
                    on_result=run_printer(label),
                )
                for label in labels
            }
        except (ValueError, FileNotFoundError) as error:
            raise click.ClickException(f"{task}: {error}") from None
        extra = {"task": task, "dataset": dataset, "model": model}
        notes = [_arms_note(labels, p)]
        shown = next((label for label in ("adalfl", "ml3") if label in arms), None)
        if shown is not None:
            figure = _snapshots_figure(
                seed_directory(output / name / shown, 0),
                output / f"{name}_learned_loss.png",
                title=f"{_NAMES[shown]} learned loss, {dataset} / {model}, seed 0",
            )
            extra["learned_loss_figure"] = figure.name
        if {"adalfl", "ml3"} <= set(arms) and p["seeds"] > 1:
            online_gain = _online_gain(arms)
            extra["adalfl_vs_ml3"] = online_gain
            notes.append(
                "The online phase (AdaLFL − ML3, same offline phase and seeds): "
                f"{online_gain['difference']:+.4f} test accuracy, Welch's p = "
                f"{online_gain['p_value']:.3g}."
            )
        unfinished = [
            f"{label} seed {r.seed}: {r.status} ({r.message})"
            for label, records in arms.items()
            for r in records
            if r.status != "completed"
        ]
        notes += ["Unfinished runs: " + "; ".join(unfinished)] if unfinished else []
        if shown is not None:
            notes.append(f"![learned loss of the seed-0 {_NAMES[shown]} run]({figure.name})")
        sections.append(
            comparison_section(
                output,
                title=f"{dataset} / {model}",
                arms=arms,
                baseline=baseline,
                name=name,
                extra=extra,
                notes=notes,
            )
        )
    optimizer = p["optimizer"].upper() if p["optimizer"] == "sgd" else "Adam"
    write_results(
        output,
        title=f"{' vs '.join(_NAMES[label] for label in labels)} ({optimizer}, "
        f"{p['epochs']} epochs, {p['init_steps']} offline steps)",
        command=command_line(ctx, "adalfl.py"),
        settings=settings,
        sections=sections,
    )


_NAMES = {BASELINE: "cross-entropy", "ml3": "ML3", "adalfl": "AdaLFL"}


def _arms_note(labels, p) -> str:
    described = {
        BASELINE: "cross-entropy",
        "ml3": f"ML3 ({p['init_steps']} offline steps, then the loss frozen)",
        "adalfl": f"AdaLFL ({p['init_steps']} offline steps, then the loss learned online)",
    }
    return (
        f"{'; '.join(described[label] for label in labels)}: {p['epochs']} epochs each, with "
        "the same data, data order, initial weights, optimizer and budget."
    )


def _online_gain(arms) -> dict:
    """AdaLFL against ML3 (Welch's t-test of test accuracy): what the online phase adds."""
    from metaloss.analysis.statistics import welch_t_test

    test = welch_t_test(
        [r.test_accuracy for r in arms["adalfl"]], [r.test_accuracy for r in arms["ml3"]]
    )
    return {"difference": test.difference, "p_value": test.p_value}


if __name__ == "__main__":
    main()
