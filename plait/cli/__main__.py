"""`python -m plait.cli` runs the CLI."""

from plait.cli import main

main()
