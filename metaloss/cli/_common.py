"""Shared pieces of the command line: option types, TensorFlow start-up, tables.

Nothing here imports TensorFlow at module level, so ``metaloss --help`` stays fast.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import click

from metaloss.data.catalog import DATASETS


def quiet_tensorflow() -> None:
    """Silences TensorFlow's C++ start-up chatter unless the user asked for it."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


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


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain-text table with aligned columns; floats get 4 decimals."""

    def cell(value) -> str:
        if isinstance(value, float):
            return f"{value:.4f}"
        return "-" if value is None else str(value)

    cells = [[cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    line = "  ".join("-" * w for w in widths)
    out = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)), line]
    out += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(out)
