"""What the paper recipes (``recipes/*.py``) share: options, smoke sizes, resuming, reports.

A recipe is a click command over the library. Each has ``--output DIR`` (where everything goes,
resumable), ``--smoke`` (tiny sizes on offline data, for tests), ``--seeds N`` and
``--overwrite``. Its settings are saved in ``DIR/settings.json``; running it again with the same
settings skips every finished run, and with different ones is a usage error (exit code 2)
rather than a silent mix of two experiments.
"""

from __future__ import annotations

import functools
import json
import shlex
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

import click

from metaloss._quiet import quiet_tensorflow
from metaloss.cli._common import format_table

__all__ = [
    "apply_smoke",
    "command_line",
    "comparison_section",
    "float_list",
    "prepare_output",
    "recipe_options",
    "run_printer",
    "training_run",
    "write_results",
]

SETTINGS_FILE = "settings.json"
# Recipe options that are train_experiment arguments of the same name.
TRAINING_OPTIONS = (
    "epochs",
    "steps",
    "batch_size",
    "optimizer",
    "learning_rate",
    "momentum",
    "weight_decay",
    "schedule",
    "validation_split",
    "subset_fraction",
    "data_dir",
    "jit_compile",
    "verbose",
)


def recipe_options(name: str, *, seeds: int = 5):
    """Adds ``--output`` (default ``runs/<name>``), ``--smoke``, ``--seeds``, ``--overwrite``
    and ``--verbose``; a missing dataset (``FileNotFoundError``) becomes a one-line error."""

    def decorate(recipe):
        @functools.wraps(recipe)  # keeps the options already attached (``__click_params__``)
        def function(*args, **kwargs):
            try:
                return recipe(*args, **kwargs)
            except FileNotFoundError as error:  # a dataset's files: a message, not a traceback
                raise click.ClickException(str(error)) from None

        for option in reversed(
            (
                click.option(
                    "--output",
                    type=click.Path(file_okay=False, path_type=Path),
                    default=Path("runs") / name,
                    show_default=True,
                    help="Directory for every file; rerunning resumes what is there.",
                ),
                click.option(
                    "--smoke",
                    is_flag=True,
                    help="Tiny sizes on offline data (seconds, for tests); explicit options win.",
                ),
                click.option(
                    "--seeds",
                    type=click.IntRange(min=1),
                    default=seeds,
                    show_default=True,
                    help="Training runs per arm, with seeds 0..N-1.",
                ),
                click.option(
                    "--overwrite",
                    is_flag=True,
                    help="Delete --output first (needed to change the settings of a run there).",
                ),
                click.option("--verbose", type=click.IntRange(0, 2), default=0, show_default=True),
            )
        ):
            function = option(function)
        return function

    return decorate


def float_list(ctx, param, value):
    """Click callback: ``"0.1,0.05"`` -> ``[0.1, 0.05]``."""
    if value is None or isinstance(value, list):
        return value
    try:
        numbers = [float(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"expected numbers separated by commas, got {value!r}") from None
    if not numbers:
        raise click.BadParameter(f"expected at least one number, got {value!r}")
    return numbers


def apply_smoke(ctx: click.Context, smoke: Mapping[str, object]) -> dict:
    """``ctx.params`` with the ``smoke`` values for every option the user left at its default.

    Only applies when ``--smoke`` was given; explicit options always win. Also silences
    TensorFlow's start-up chatter, as every recipe calls this first.
    """
    quiet_tensorflow()
    params = dict(ctx.params)
    if not params.get("smoke"):
        return params
    for key, value in smoke.items():
        if ctx.get_parameter_source(key) == click.core.ParameterSource.DEFAULT:
            params[key] = value
    return params


def command_line(ctx: click.Context, script: str) -> str:
    """The shell command that reruns this invocation: ``python recipes/<script> --opt v ...``."""
    words = ["python", f"recipes/{script}"]
    for param in ctx.command.params:
        if not isinstance(param, click.Option) or param.name not in ctx.params:
            continue
        if ctx.get_parameter_source(param.name) == click.core.ParameterSource.DEFAULT:
            continue
        value = ctx.params[param.name]
        if param.is_flag and not param.secondary_opts:
            if value:
                words.append(param.opts[0])
        elif param.is_flag:
            words.append(param.opts[0] if value else param.secondary_opts[0])
        else:
            values = value if param.multiple else [value]
            for item in values:
                if isinstance(item, list):
                    item = ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in item)
                words += [param.opts[0], str(item)]
    return " ".join(shlex.quote(word) for word in words)


def _jsonable(value):
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def prepare_output(output: Path, settings: Mapping, *, overwrite: bool) -> dict:
    """Creates ``output`` and records ``settings`` there, or checks them against a previous run.

    Raises:
        click.UsageError: ``output`` holds a run with different settings (and not ``overwrite``).
            Options the previous run did not record (added to a recipe since) are accepted.
    """
    quiet_tensorflow()
    settings = _jsonable(dict(settings))
    ignored = {"output", "overwrite", "verbose"}
    kept = {k: v for k, v in settings.items() if k not in ignored}
    path = output / SETTINGS_FILE
    if overwrite and output.exists():
        shutil.rmtree(output)
    if path.is_file():
        previous = json.loads(path.read_text())
        # Options added to the recipe since that run are not a difference.
        changed = sorted(k for k in previous if previous[k] != kept.get(k))
        if changed:
            details = ", ".join(f"{k}: {previous.get(k)!r} -> {kept.get(k)!r}" for k in changed)
            raise click.UsageError(
                f"Invalid value for '--output': {output} holds a run with other settings "
                f"({details}). Pass --overwrite to start afresh, or choose another --output."
            )
    output.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(kept, indent=2) + "\n")
    partial.replace(path)
    return kept


def training_run(p: Mapping, dataset: str, model: str, loss, **overrides):
    """A resumable :func:`~metaloss.training.train_experiment` run for ``run_seeds``.

    Takes from the recipe's parameters ``p`` every option named like one of
    ``train_experiment``'s arguments (:data:`TRAINING_OPTIONS`), with ``resume=True`` so an
    interrupted run continues from its checkpoints; ``overrides`` win.

    Returns:
        A function of ``seed`` and ``output`` returning an ``ExperimentResult``.
    """
    from metaloss.training import train_experiment

    settings = {key: p[key] for key in TRAINING_OPTIONS if key in p}
    settings.update({"resume": True, **overrides})
    return functools.partial(train_experiment, dataset, model, loss, **settings)


def run_printer(label: str):
    """An ``on_result`` callback for :func:`metaloss.training.run_seeds` that echoes each run."""

    def echo(record, finished: bool) -> None:
        origin = "finished earlier" if finished else f"{record.seconds:.1f} s"
        status = "" if record.status == "completed" else f" [{record.status}]"
        click.echo(
            f"  {label:<24} seed {record.seed}: test accuracy {record.test_accuracy:.4f}"
            f"{status} ({origin})"
        )

    return echo


def _mean_curve(histories: Sequence[Mapping], key: str) -> list[float]:
    curves = [h[key] for h in histories if h.get(key)]
    if not curves:
        return []
    length = min(len(c) for c in curves)
    return [sum(c[i] for c in curves) / len(curves) for i in range(length)]


def comparison_section(
    output: Path,
    *,
    title: str,
    arms: Mapping[str, Sequence],
    baseline: str,
    name: str,
    extra: Mapping | None = None,
    notes: Sequence[str] = (),
) -> dict:
    """Compares the arms' test accuracy: prints a table, draws figures, returns a section.

    Args:
        output: the recipe's directory (the figures go there).
        title: the section's heading.
        arms: arm label -> list of :class:`~metaloss.training.ExperimentResult`, one per seed.
        baseline: the arm every other is tested against (Welch's t-test).
        name: stem of the figure files.
        extra: more JSON content (e.g. robustness curves). Defaults to `None`.
        notes: Markdown lines added under the table. Defaults to `()`.

    Returns:
        A section for :func:`write_results`: its JSON payload, with its Markdown under
        ``"markdown"``.
    """
    quiet_tensorflow()
    from metaloss.analysis.plots import plot_comparison, plot_seed_values
    from metaloss.analysis.statistics import (
        COMPARISON_HEADERS,
        compare,
        comparison_rows,
        markdown_table,
    )

    accuracy = {label: [r.test_accuracy for r in runs] for label, runs in arms.items()}
    comparisons = compare(accuracy, baseline)
    rows = comparison_rows(comparisons)
    seeds_figure = plot_seed_values(accuracy, output / f"{name}_test_accuracy.png", title=title)
    curves = {
        label: {"val_accuracy": _mean_curve([r.history for r in runs], "val_accuracy")}
        for label, runs in arms.items()
    }
    figures = [seeds_figure.name]
    if any(c["val_accuracy"] for c in curves.values()):  # runs without a validation split: none
        figures.append(
            plot_comparison(
                curves,
                output / f"{name}_validation_accuracy.png",
                title="validation accuracy, mean over seeds",
            ).name
        )
    markdown = "\n".join(
        [
            f"### {title}",
            "",
            f"Test accuracy over seeds; p from Welch's t-test against {baseline}.",
            "",
            markdown_table(COMPARISON_HEADERS, rows),
            *[f"{line}\n" for line in notes],
            *[f"![{figure.split('.')[0]}]({figure})" for figure in figures],
            "",
        ]
    )
    click.echo(f"\n{title}\n" + format_table(COMPARISON_HEADERS, rows))
    return {
        "title": title,
        "metric": "test_accuracy",
        "baseline": baseline,
        "comparisons": [c.to_dict() for c in comparisons],
        "runs": {label: [r.to_dict() for r in runs] for label, runs in arms.items()},
        "figures": figures,
        "notes": list(notes),
        **_jsonable(dict(extra or {})),
        "markdown": markdown,
    }


def write_results(
    output: Path, *, title: str, command: str, settings: Mapping, sections: Sequence[dict]
) -> Path:
    """Writes ``results.json`` and ``results.md`` (title, sections, the command) atomically.

    Returns:
        The path of ``results.json``.
    """
    from metaloss.training import write_study

    payload = {
        "title": title,
        "command": command,
        "settings": _jsonable(dict(settings)),
        "sections": [{k: v for k, v in s.items() if k != "markdown"} for s in sections],
    }
    markdown = "\n".join(
        [f"# {title}", "", *[s["markdown"] for s in sections], "```bash", command, "```", ""]
    )
    path = write_study(output, payload, markdown)
    click.echo(f"\nWrote {path}, {output / 'results.md'} and figures under {output}.")
    return path
