"""The ``metaloss`` command line: a click group, one module per command family.

Command modules import TensorFlow only inside their functions, so ``metaloss --help`` and
``metaloss datasets`` answer without loading it.
"""

from __future__ import annotations

import click

from metaloss import __version__
from metaloss.cli.analyze import analyze
from metaloss.cli.attack import attack
from metaloss.cli.catalog import datasets_command, losses_command
from metaloss.cli.demo import demo
from metaloss.cli.online import online
from metaloss.cli.report import report
from metaloss.cli.search import search
from metaloss.cli.train import train

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="metaloss")
def main():
    """metaloss: loss-function metalearning for Keras 3.

    Train with metalearned and dynamical losses (TaylorGLO, Baikal, cyclic class emphasis),
    search for new ones or learn one online (AdaLFL), compare them with cross-entropy on
    offline or downloaded datasets, and analyse why they work.
    """


main.add_command(train)
main.add_command(search)
main.add_command(online)
main.add_command(demo)
main.add_command(report)
main.add_command(analyze)
main.add_command(attack)
main.add_command(losses_command)
main.add_command(datasets_command)
