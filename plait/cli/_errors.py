"""Turn user errors into a short message and exit status 2, with no traceback."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console

from plait.sdk.errors import PlaitError


@contextmanager
def user_errors() -> Iterator[None]:
    """Print a PlaitError's message to stderr and exit 2; let real bugs show their traceback."""
    try:
        yield
    except PlaitError as err:
        print(f"error: {err}", file=sys.stderr)
        raise typer.Exit(code=2) from None


def output_console() -> Console:
    """A console for tables on stdout: the terminal's width (or $COLUMNS), or wide enough when piped (rich would
    cut at 80)."""
    return Console() if sys.stdout.isatty() or os.environ.get("COLUMNS") else Console(width=160)
