"""The command line's shared click options and parameter types, for `metaloss` and the recipes.

Nothing here imports TensorFlow at module level, so ``metaloss --help`` stays fast; commands
import it through :func:`metaloss._quiet.quiet_tensorflow`, which hides its start-up lines.
"""

from __future__ import annotations

import click

from metaloss._quiet import quiet_tensorflow
from metaloss.data.catalog import DATASETS


class LossSpec(click.ParamType):
    """A loss name, ``name:key=value,...``, ``metaloss>Class`` or a JSON file, checked on parse."""

    name = "LOSS"

    def convert(self, value, param, ctx):
        if not isinstance(value, str):
            return value
        quiet_tensorflow()
        from metaloss import losses

        try:
            losses.get(value, from_logits=True)
        except ValueError as error:
            self.fail(str(error), param, ctx)
        return value


class ModelSpec(click.ParamType):
    """A model name with optional arguments, e.g. ``wrn:depth=16,width=8``."""

    name = "MODEL"

    def convert(self, value, param, ctx):
        quiet_tensorflow()  # metaloss.models may import Keras, and so TensorFlow
        from metaloss.losses._spec import parse_spec
        from metaloss.models import MODELS

        try:
            name, _ = parse_spec(value)
        except ValueError as error:
            self.fail(str(error), param, ctx)
        if name not in MODELS:
            self.fail(f"expected one of {sorted(MODELS)}, received {name!r}", param, ctx)
        return value


def dataset_option(default: str = "mnist1d"):
    return click.option(
        "--dataset",
        type=click.Choice(sorted(DATASETS)),
        default=default,
        show_default=True,
        help="Dataset (see `metaloss datasets`).",
    )


def _apply(options):
    def decorate(command):
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def candidate_scoring_options(
    *, fitness_seeds: int = 1, reevaluate_top: int = 0, reevaluate_seeds: int = 3
):
    """``--fitness-seeds``, ``--reevaluate-top`` and ``--reevaluate-seeds`` of a TaylorGLO
    search (``TaylorGLOSearch``'s ``fitness_seeds``, ``reevaluate_top``, ``reevaluate_seeds``)."""
    return _apply(
        [
            click.option(
                "--fitness-seeds",
                type=click.IntRange(min=1),
                default=fitness_seeds,
                show_default=True,
                help="Train every candidate on this many seeds (each its own split, data order "
                "and initial weights) and score it by the mean validation accuracy; a seed "
                "that diverges scores 0. With --parallel-candidates K, K x R replicas train "
                "together.",
            ),
            click.option(
                "--reevaluate-top",
                type=click.IntRange(min=0),
                default=reevaluate_top,
                show_default=True,
                help="When the search ends, retrain its k best distinct candidates on "
                "--reevaluate-seeds fresh seeds and crown the best re-evaluated mean (writes "
                "reevaluation.json). 0: crown the best search score.",
            ),
            click.option(
                "--reevaluate-seeds",
                type=click.IntRange(min=1),
                default=reevaluate_seeds,
                show_default=True,
                help="Seeds of the re-evaluation: the ones after the search's own.",
            ),
        ]
    )


def optimizer_options(
    *, optimizer: str = "sgd", momentum: float = 0.9, lr_help: str, momentum_help: str | None = None
):
    """``--batch-size``, ``--optimizer``, ``--lr``, ``--momentum`` and ``--weight-decay``."""
    return _apply(
        [
            click.option(
                "--batch-size", type=click.IntRange(min=1), default=128, show_default=True
            ),
            click.option(
                "--optimizer",
                type=click.Choice(["sgd", "adam"]),
                default=optimizer,
                show_default=True,
            ),
            click.option(
                "--lr", type=click.FloatRange(min=0, min_open=True), default=None, help=lr_help
            ),
            click.option(
                "--momentum",
                type=click.FloatRange(0, 1, max_open=True),
                default=momentum,
                show_default=True,
                help=momentum_help,
            ),
            click.option(
                "--weight-decay", type=click.FloatRange(min=0), default=0.0, show_default=True
            ),
        ]
    )


def data_split_options(command):
    """``--validation-split``, ``--subset-fraction`` and ``--data-dir``."""
    return _apply(
        [
            click.option(
                "--validation-split",
                type=click.FloatRange(0, 1, max_open=True),
                default=0.1,
                show_default=True,
            ),
            click.option(
                "--subset-fraction",
                type=click.FloatRange(0, 1, min_open=True),
                default=1.0,
                show_default=True,
                help="Fraction of the training data used (data utilisation).",
            ),
            click.option(
                "--data-dir",
                type=click.Path(file_okay=False),
                default=None,
                help="Directory holding dataset archives (e.g. cifar-10-python.tar.gz).",
            ),
        ]
    )(command)
