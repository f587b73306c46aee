"""`plait graph`: (being written)."""

from __future__ import annotations

import typer


def graph() -> None:
    """Not written yet."""
    raise typer.Exit(code=1)
