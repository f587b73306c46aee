"""`plait cost`: (being written)."""

from __future__ import annotations

import typer


def cost() -> None:
    """Not written yet."""
    raise typer.Exit(code=1)
