"""The click side of the paper recipes (``recipes/*.py``): their options, smoke sizes, reruns.

A recipe is a click command over the library; what it shares with other experiments that is not
a click option (settings files, training runs, comparison sections, result files) lives in
:mod:`metaloss.experiments`. Each has ``--output DIR`` (where everything goes,
resumable), ``--smoke`` (tiny sizes on offline data, for tests), ``--seeds N`` and
``--overwrite``. Its settings are saved in ``DIR/settings.json``; running it again with the same
settings skips every finished run, and with different ones is a usage error (exit code 2)
rather than a silent mix of two experiments.
"""

from __future__ import annotations

import functools
import shlex
from collections.abc import Mapping
from pathlib import Path

import click

from metaloss._quiet import quiet_tensorflow
from metaloss.experiments.settings import SettingsMismatchError

__all__ = ["apply_smoke", "command_line", "float_list", "recipe_options"]


def recipe_options(name: str, *, seeds: int = 5):
    """Adds ``--output`` (default ``runs/<name>``), ``--smoke``, ``--seeds``, ``--overwrite``
    and ``--verbose``; a missing dataset (``FileNotFoundError``) becomes a one-line error and
    an ``--output`` holding other settings a usage error (exit code 2)."""

    def decorate(recipe):
        @functools.wraps(recipe)  # keeps the options already attached (``__click_params__``)
        def function(*args, **kwargs):
            try:
                return recipe(*args, **kwargs)
            except FileNotFoundError as error:  # a dataset's files: a message, not a traceback
                raise click.ClickException(str(error)) from None
            except SettingsMismatchError as error:
                raise click.UsageError(str(error)) from None

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
