"""`metaloss losses` and `metaloss datasets`: what the zoo and the data loaders offer."""

from __future__ import annotations

import click

from metaloss._quiet import quiet_tensorflow
from metaloss.experiments.tables import format_table


@click.command("losses")
def losses_command():
    """List the loss zoo with one-line descriptions."""
    quiet_tensorflow()
    from metaloss.losses import catalog

    rows = sorted(catalog().items())
    click.echo(format_table(("name", "description"), rows))
    click.echo(
        "\nPass arguments as 'name:key=value,...', e.g. "
        "'taylor_glo:theta=[0,0,0,-2,0,2,0,0]', or a JSON file written by metaloss."
    )


@click.command("datasets")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Also look for archives here.",
)
def datasets_command(data_dir):
    """List the datasets and whether each is available without a download."""
    from metaloss.data.catalog import DATASETS, is_available

    rows = []
    for name, info in sorted(DATASETS.items()):
        if info.offline:
            where = "yes (built in)"
        elif is_available(name, data_dir):
            where = "yes (archive found)"
        else:
            where = "no: needs " + ", ".join(info.files[:1])
        rows.append(
            (name, info.num_classes, "x".join(map(str, info.input_shape)), where, info.description)
        )
    click.echo(format_table(("name", "classes", "input", "offline", "description"), rows))
