"""`metaloss search`: a loss search with partial training in a directory: TaylorGLO (CMA-ES over
a Taylor polynomial) or EvoMAL (genetic programming over expressions)."""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import click

from metaloss._quiet import quiet_tensorflow
from metaloss.cli.options import ModelSpec, candidate_scoring_options, dataset_option

_SCHEDULES = ["allcnn_c", "alexnet", "constant", "resnet", "wrn"]
DISTRIBUTED_TRIAL_TIMEOUT = 1800.0  # --trial-timeout in chief/worker mode: 30 minutes
SEARCH_FILE = "search.json"  # metaloss.search.tuner.SEARCH_FILE, without importing TensorFlow

# CLI option -> where search.json keeps it (a key of the search settings, or of its task).
_SAVED_AS = {
    "method": (None, "method"),
    "dataset": ("task", "dataset"),
    "model": ("task", "model"),
    "budget_epochs": ("task", "epochs"),
    "budget_steps": ("task", "steps"),
    "batch_size": ("task", "batch_size"),
    "optimizer": ("task", "optimizer"),
    "lr": ("task", "learning_rate"),
    "momentum": ("task", "momentum"),
    "weight_decay": ("task", "weight_decay"),
    "schedule": ("task", "schedule"),
    "validation_split": ("task", "validation_split"),
    "subset_fraction": ("task", "subset_fraction"),
    "data_dir": ("task", "data_dir"),
    "abort_epoch": ("task", "abort_epoch"),
    "abort_threshold": ("task", "abort_threshold"),
    "jit": ("task", "jit_compile"),
    "generations": (None, "generations"),
    "population": (None, "population_size"),
    "sigma0": (None, "sigma0"),
    "seed": (None, "seed"),
    "invariant": (None, "invariant"),
    "rejected": (None, "rejected"),
    "objective": ("task", "objective"),
    "attack_eps": ("task", "attack_eps"),
    "attack_loss": ("task", "attack_loss"),
    "fitness_seeds": ("task", "fitness_seeds"),
    "reevaluate_top": (None, "reevaluate_top"),
    "reevaluate_seeds": (None, "reevaluate_seeds"),
    "local_search_steps": (None, "local_search_steps"),
    "rejection": (None, "rejection"),
    "equivalence": (None, "equivalence"),
}
METHODS = ("taylorglo", "evomal")
# Options that only one method reads: given on the command line for the other, a usage error.
_ONLY_FOR = {
    "taylorglo": ("invariant", "rejected", "sigma0"),
    "evomal": ("local_search_steps", "rejection", "equivalence"),
}


def _check_method_options(ctx, method: str) -> None:
    for other, names in _ONLY_FOR.items():
        if other == method:
            continue
        for name in names:
            if ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE:
                flag = "--" + name.replace("_", "-")
                raise click.UsageError(
                    f"{flag} is an option of --method {other}, not of --method {method}."
                )


def _saved_value(settings: dict, option: str, default=None):
    """The saved value of ``option`` (``default`` for a search saved before it existed)."""
    group, key = _SAVED_AS[option]
    return (settings["task"] if group else settings).get(key, default)


def _prepare_directory(ctx, directory: Path, resume: bool, overwrite: bool, options: dict):
    """Refuses to clobber a directory; on --resume, fills options from the saved search."""
    if resume and overwrite:
        raise click.UsageError("--resume and --overwrite exclude each other.")
    saved_file = directory / SEARCH_FILE
    occupied = directory.exists() and any(directory.iterdir())
    if resume:
        if not saved_file.exists():
            raise click.UsageError(f"--resume: {directory} holds no search ({SEARCH_FILE}).")
        settings = json.loads(saved_file.read_text())
        for option in _SAVED_AS:
            declared = next(p.default for p in ctx.command.params if p.name == option)
            saved = _saved_value(settings, option, declared)
            given = ctx.get_parameter_source(option) == click.core.ParameterSource.COMMANDLINE
            if given and options[option] != saved:
                raise click.UsageError(
                    f"--resume: --{option.replace('_', '-')}={options[option]} differs from the "
                    f"search in {directory} ({saved}); leave it out to keep the saved value."
                )
            options[option] = saved
        return
    if occupied and not overwrite:
        raise click.UsageError(
            f"{directory} already holds files; pass --resume to continue the search there, "
            "--overwrite to start it afresh, or choose another --directory."
        )
    if occupied:
        if not saved_file.exists():
            raise click.UsageError(
                f"--overwrite: {directory} is not a search directory (no {SEARCH_FILE}); "
                "refusing to delete it."
            )
        shutil.rmtree(directory)


def _check_trial_timeout(ctx, param, value):
    if value is not None and (not math.isfinite(value) or value < 0):
        raise click.BadParameter(f"expected seconds >= 0 (0 turns it off), got {value}.")
    return value


def _trial_timeout(value: float | None) -> float | None:
    """--trial-timeout's seconds: 0 is off; unset is off in one process, 30 min in a cluster."""
    if value is None:
        return DISTRIBUTED_TRIAL_TIMEOUT if "KERASTUNER_ORACLE_IP" in os.environ else None
    return value or None


@click.command()
@click.option(
    "--method",
    type=click.Choice(METHODS),
    default="taylorglo",
    show_default=True,
    help="taylorglo: CMA-ES over the 8 parameters of a Taylor-polynomial loss. evomal: "
    "genetic programming over loss expressions (EvoMAL), with its filters and local search.",
)
@dataset_option()
@click.option("--model", type=ModelSpec(), default="mlp", show_default=True, help="Model name.")
@click.option("--generations", type=click.IntRange(min=1), default=4, show_default=True)
@click.option(
    "--population",
    type=click.IntRange(min=2),
    default=None,
    help="Candidates per generation. Defaults to pycma's 4 + 3 ln 8 = 10 (taylorglo), 25 "
    "(evomal, EvoMAL's).",
)
@click.option(
    "--budget-epochs",
    type=click.IntRange(min=1),
    default=None,
    help="Partial-training epochs per candidate. Defaults to 5 when --budget-steps is unset.",
)
@click.option(
    "--budget-steps", type=click.IntRange(min=1), default=None, help="Or optimizer steps."
)
@click.option(
    "--directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("runs/search"),
    show_default=True,
    help="Search directory (trials, TensorBoard logs, best_loss.json, report).",
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Seeds CMA-ES and every candidate."
)
@click.option(
    "--invariant/--no-invariant",
    default=True,
    show_default=True,
    help="Reject candidates that break the TaylorGLO invariant before training them.",
)
@click.option(
    "--rejected",
    type=click.Choice(["worst", "ranked"]),
    default="worst",
    show_default=True,
    help="What CMA-ES is told of candidates the invariant rejects: the worst fitness (all tie, "
    "the reference's rule), or worse than every trained candidate but ordered by how far "
    "they break the invariant.",
)
@click.option(
    "--sigma0",
    type=click.FloatRange(min=0, min_open=True),
    default=1.2,
    help="CMA-ES initial step size in the TaylorGLO reference's units: theta_0..theta_7 start "
    "with steps sigma0 x (1, 1, 1, 2, 6, 1, 2, 2).",
)
@click.option(
    "--local-search-steps",
    type=click.IntRange(min=0),
    default=250,
    show_default=True,
    help="(evomal) Meta steps tuning the best expressions' edge weights after the search "
    "(EvoMAL's local search); 0 skips it.",
)
@click.option(
    "--rejection/--no-rejection",
    default=True,
    show_default=True,
    help="(evomal) Reject, untrained, expressions under which optimising an untrained model's "
    "predictions does not lower their error rate (EvoMAL's rejection protocol).",
)
@click.option(
    "--equivalence/--no-equivalence",
    default=True,
    show_default=True,
    help="(evomal) Give an expression whose gradient matches an already scored one's that "
    "score, untrained (EvoMAL's gradient equivalence).",
)
@click.option("--batch-size", type=click.IntRange(min=1), default=128, show_default=True)
@click.option("--optimizer", type=click.Choice(["sgd", "adam"]), default="sgd", show_default=True)
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=None)
@click.option(
    "--momentum", type=click.FloatRange(0, 1, max_open=True), default=0.9, show_default=True
)
@click.option("--weight-decay", type=click.FloatRange(min=0), default=0.0, show_default=True)
@click.option("--schedule", type=click.Choice(_SCHEDULES), default="constant", show_default=True)
@click.option(
    "--validation-split",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=0.1,
    show_default=True,
)
@click.option(
    "--subset-fraction",
    type=click.FloatRange(0, 1, min_open=True),
    default=1.0,
    show_default=True,
)
@click.option("--data-dir", type=click.Path(file_okay=False), default=None)
@click.option(
    "--abort-epoch",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="Epoch of the early-abort check.",
)
@click.option(
    "--abort-threshold",
    type=click.FloatRange(0, 1),
    default=0.15,
    show_default=True,
    help="Validation accuracy a candidate needs at --abort-epoch to go on.",
)
@click.option(
    "--objective",
    type=click.Choice(["accuracy", "robust"]),
    default="accuracy",
    show_default=True,
    help="Fitness: validation accuracy, or validation accuracy on FGSM examples (robust).",
)
@click.option(
    "--attack-eps",
    type=click.FloatRange(min=0),
    default=0.1,
    show_default=True,
    help="FGSM perturbation size of --objective robust (pixels in [0, 1]).",
)
@click.option(
    "--attack-loss",
    type=click.Choice(["own", "cross_entropy"]),
    default="cross_entropy",
    show_default=True,
    help="Whose input gradient the FGSM attack follows: cross-entropy, or each candidate's own "
    "loss (the paper's code; a loss can then score higher under attack than clean).",
)
@candidate_scoring_options()
@click.option("--jit/--no-jit", default=None, help="XLA-compile the train steps.")
@click.option(
    "--parallel-candidates",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Train up to this many candidates at once, as one population in one compiled step "
    "(same fitness as one at a time, several times faster for small models).",
)
@click.option(
    "--tensorboard/--no-tensorboard",
    default=True,
    show_default=True,
    help="Write TensorBoard scalars and HParams summaries under --directory/logs.",
)
@click.option(
    "--trial-timeout",
    type=float,
    default=None,
    callback=_check_trial_timeout,
    metavar="SECONDS",
    help="Abandon a running trial that sent no report for this long (a worker killed "
    "mid-trial) and serve its candidate again; a worker also gives up on a chief that stops "
    "answering for this long. A trial reports after each of its epochs: make it longer than "
    "the longest epoch. 0 turns it off. Defaults to off in one process, 1800 (30 minutes) in "
    "chief/worker mode (KERASTUNER_ORACLE_IP set).",
)
@click.option("--resume", is_flag=True, help="Continue the search in --directory.")
@click.option("--overwrite", is_flag=True, help="Delete the search in --directory first.")
@click.option("--verbose", type=click.IntRange(0, 2), default=1, show_default=True)
@click.pass_context
def search(
    ctx,
    directory,
    resume,
    overwrite,
    tensorboard,
    parallel_candidates,
    trial_timeout,
    verbose,
    **options,
):
    """Evolve a loss (TaylorGLO with CMA-ES, or EvoMAL expressions by genetic programming),
    scoring candidates by partial training.

    Shows live progress, then the top candidates; writes best_loss.json (for
    `metaloss train --loss`), TensorBoard logs (HParams dashboard) and a report with figures.

    Example: metaloss search --dataset mnist1d --model mlp --generations 6 --population 8
    --budget-epochs 5 --directory runs/s --seed 0

    EvoMAL: metaloss search --method evomal --generations 6 --population 12
    --budget-epochs 5 --directory runs/evomal --seed 0

    Distributed (KerasTuner's chief/worker mode): run the same command on every machine with
    KERASTUNER_ORACLE_IP, KERASTUNER_ORACLE_PORT and KERASTUNER_TUNER_ID=chief (one process,
    the oracle) or worker0, worker1, ... (the trainers), with --directory on a shared disk.
    A worker killed mid-trial has its candidate served again after --trial-timeout.
    """
    if not resume:  # checked before --overwrite deletes anything (on --resume: once read)
        _check_method_options(ctx, options["method"])
    tuner_id = os.environ.get("KERASTUNER_TUNER_ID", "")
    is_worker = "KERASTUNER_ORACLE_IP" in os.environ and "chief" not in tuner_id
    if is_worker:  # the chief checks and prepares the directory
        if resume:
            _prepare_directory(ctx, directory, resume, overwrite, options)
    else:
        _prepare_directory(ctx, directory, resume, overwrite, options)
    method = options.pop("method")
    _check_method_options(ctx, method)  # a resumed search's method is the saved one
    quiet_tensorflow()
    from metaloss.search import EvoMALSearch, SearchTask, TaylorGLOSearch
    from metaloss.search._chief import ChiefNotAnswering

    try:
        task = SearchTask(
            dataset=options["dataset"],
            model=options["model"],
            epochs=options["budget_epochs"],
            steps=options["budget_steps"],
            batch_size=options["batch_size"],
            optimizer=options["optimizer"],
            learning_rate=options["lr"],
            momentum=options["momentum"],
            weight_decay=options["weight_decay"],
            schedule=options["schedule"],
            validation_split=options["validation_split"],
            subset_fraction=options["subset_fraction"],
            data_dir=options["data_dir"],
            seed=options["seed"],
            abort_epoch=options["abort_epoch"],
            abort_threshold=options["abort_threshold"],
            jit_compile=options["jit"],
            objective=options["objective"],
            attack_eps=options["attack_eps"],
            attack_loss=options["attack_loss"],
            fitness_seeds=options["fitness_seeds"],
        )
        shared = {
            "generations": options["generations"],
            "seed": options["seed"],
            "reevaluate_top": options["reevaluate_top"],
            "reevaluate_seeds": options["reevaluate_seeds"],
            "tensorboard": tensorboard,
            "parallel_candidates": parallel_candidates,
            "directory": directory,
            "overwrite": False,
            "trial_timeout": _trial_timeout(trial_timeout),
        }
        if method == "evomal":
            population = (
                {} if options["population"] is None else {"population_size": options["population"]}
            )
            tuner = EvoMALSearch(
                task,
                **population,
                rejection=options["rejection"],
                equivalence=options["equivalence"],
                local_search_steps=options["local_search_steps"],
                **shared,
            )
        else:
            tuner = TaylorGLOSearch(
                task,
                population_size=options["population"],
                sigma0=options["sigma0"],
                invariant=options["invariant"],
                rejected=options["rejected"],
                **shared,
            )
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    title = "TaylorGLO" if method == "taylorglo" else "EvoMAL"
    click.echo(
        f"{title} search on {task.dataset} / {task.model}: {options['generations']} "
        f"generations x {tuner.population_size} candidates, "
        + (f"{task.epochs} epochs" if task.steps is None else f"{task.steps} steps")
        + f" each, in {directory}"
        + (f", {parallel_candidates} at a time" if parallel_candidates > 1 else "")
        + (
            f"; a trial silent for {tuner.trial_timeout:g} s is served again"
            if tuner.trial_timeout
            else ""
        )
        + (
            f"; fitness: mean of {task.fitness_seeds} seeds ({task.seed}..{task.seeds[-1]})"
            if task.fitness_seeds > 1
            else ""
        )
        + (
            f"; the best {options['reevaluate_top']} re-evaluated on "
            f"{options['reevaluate_seeds']} fresh seeds"
            if options["reevaluate_top"]
            else ""
        )
        + (
            f"; fitness under FGSM (eps={task.attack_eps}, {task.attack_loss} gradient)"
            if task.objective == "robust"
            else ""
        )
    )
    try:
        tuner.search(verbose=verbose)
    except ChiefNotAnswering as error:
        raise click.ClickException(str(error)) from None
    summarize_search(directory)


def summarize_search(directory: Path) -> None:
    """Prints the top candidates and where the best loss, report and dashboards are."""
    from metaloss.cli.report import top_table
    from metaloss.search.report import write_report
    from metaloss.search.results import read_search

    record = read_search(directory)
    report = write_report(directory)
    click.echo("\n" + top_table(record))
    failed = sum(t.status in ("diverged", "failed") for t in record.trials)
    if record.settings.get("method") == "evomal":
        click.echo(
            f"\n{len(record.trials)} trials, {record.rejected} candidates rejected by the "
            f"rejection protocol, {record.reused} reused an equivalent candidate's score, "
            f"{failed} failed."
        )
    else:
        click.echo(
            f"\n{len(record.trials)} trials, {record.rejected} candidates rejected by the "
            f"invariant, {failed} failed."
        )
    click.echo(f"Report: {report}   TensorBoard: tensorboard --logdir {directory / 'logs'}")
    if record.best is None:
        raise click.ClickException(
            "no candidate completed training (every trained candidate failed or diverged); "
            "there is no best loss. Try a smaller --sigma0 or a lower --lr."
        )
    click.echo(f"Best loss: {directory / 'best_loss.json'}")
    click.echo(f"Train with it: metaloss train --loss {directory / 'best_loss.json'}")
