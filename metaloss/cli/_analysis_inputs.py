"""Inputs of `metaloss analyze`: a saved model, examples from a dataset, losses; and outputs.

Nothing here imports TensorFlow at module level: the functions import it when called.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import click
import numpy as np

from metaloss._quiet import quiet_tensorflow
from metaloss.cli.options import LossSpec, dataset_option
from metaloss.experiments.tables import format_table

DEFAULT_LOSSES = ("cross_entropy", "mse", "baikal", "taylor_glo_reference")


def model_option(required: bool = True):
    return click.option(
        "--model",
        "model_path",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        required=required,
        help="A saved .keras model (e.g. runs/<name>/model.keras from `metaloss train`).",
    )


def losses_option(help_text: str):
    return click.option("--loss", "loss_specs", type=LossSpec(), multiple=True, help=help_text)


def loss_step_option(function):
    return click.option(
        "--loss-step",
        type=click.IntRange(min=0),
        default=None,
        help="The training step at which to evaluate a dynamical (step-aware) loss, such as "
        "cyclic_class_emphasis. Defaults to 0.",
    )(function)


def examples_options(function):
    """--dataset, --split, --samples, --seed, --data-dir."""
    options = [
        dataset_option(),
        click.option(
            "--split",
            type=click.Choice(["train", "validation", "test"]),
            default="train",
            show_default=True,
            help="Which split the examples come from.",
        ),
        click.option(
            "--seed",
            type=int,
            default=0,
            show_default=True,
            help="Seeds the validation split and which examples are drawn.",
        ),
        click.option(
            "--data-dir",
            type=click.Path(file_okay=False),
            default=None,
            help="Directory holding dataset archives (e.g. cifar-10-python.tar.gz).",
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def output_options(function):
    """--json and --plot."""
    function = click.option(
        "--plot",
        "plot_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="Also write a PNG figure here.",
    )(function)
    return click.option(
        "--json", "as_json", is_flag=True, help="Print JSON (for machines) instead of a table."
    )(function)


def load_model(path: Path):
    """The saved model, or a usage error naming ``--model``."""
    quiet_tensorflow()
    import keras

    import metaloss.losses  # noqa: F401  (registers the zoo with Keras's deserializer)

    try:
        return keras.saving.load_model(path)
    except Exception as error:  # Keras raises many types for a bad file
        raise click.BadParameter(
            f"could not load {path} as a Keras model ({type(error).__name__}: {error})",
            param_hint="--model",
        ) from None


def load_examples(
    dataset: str, split: str, samples: int, seed: int, data_dir, model=None
) -> tuple[np.ndarray, np.ndarray, int]:
    """``samples`` examples drawn (seeded) from a split: ``(x, class ids, num_classes)``.

    When ``model`` is given its input and output shapes must match the dataset's.
    """
    quiet_tensorflow()
    from metaloss.data import load

    try:
        data = load(dataset, seed=seed, data_dir=data_dir, download=False)
        x, y = data.arrays(split)
    except (ValueError, FileNotFoundError) as error:
        raise click.BadParameter(str(error), param_hint="--dataset") from None
    if model is not None:
        expected = tuple(model.input_shape[1:])
        if expected != tuple(x.shape[1:]) or model.output_shape[-1] != data.num_classes:
            raise click.BadParameter(
                f"the model takes inputs {expected} and gives {model.output_shape[-1]} outputs; "
                f"{dataset} has inputs {tuple(x.shape[1:])} and {data.num_classes} classes",
                param_hint="--dataset",
            )
    order = np.random.default_rng(seed).permutation(len(x))[: min(samples, len(x))]
    return x[order], y[order], data.num_classes


def resolve_losses(
    specs: Sequence[str], model=None, loss_step: int | None = None
) -> dict[str, object]:
    """label -> loss: the given specs (read as taking logits), else the model's compiled loss.

    A step-aware loss has its step set to ``loss_step``; giving a step when no loss is
    step-aware is a usage error.
    """
    quiet_tensorflow()
    from metaloss import losses

    if specs:
        resolved = {spec: losses.get(spec, from_logits=True) for spec in specs}
    else:
        compiled = getattr(model, "loss", None) if model is not None else None
        if compiled is None:
            raise click.UsageError(
                "The model was saved without a compiled loss: pass one or more --loss."
            )
        resolved = {f"{getattr(compiled, 'name', 'compiled loss')} (compiled)": compiled}
    if loss_step is not None:
        steps = [losses.loss_step_variable(loss) for loss in resolved.values()]
        if not any(step is not None for step in steps):
            raise click.BadParameter(
                "no loss here depends on the training step", param_hint="--loss-step"
            )
        for step in steps:
            if step is not None:
                step.assign(loss_step)
    return resolved


def emit(payload: dict, as_json: bool, headers: Sequence[str], rows: Sequence[Sequence]) -> None:
    """Prints ``payload`` as JSON, or the table of ``rows``."""
    if as_json:
        click.echo(json.dumps(payload, indent=2, default=_jsonable))
    else:
        click.echo(format_table(headers, rows))


def _jsonable(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def note(message: str, as_json: bool) -> None:
    """A human-facing line: on stdout with tables, on stderr with --json (stdout stays JSON)."""
    click.echo(message, err=as_json)
