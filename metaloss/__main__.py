"""``python -m metaloss`` runs the command line."""

from metaloss.cli import main

main()
