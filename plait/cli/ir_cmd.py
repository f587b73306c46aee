"""`plait ir`: (being written)."""

from __future__ import annotations

import typer


def ir() -> None:
    """Not written yet."""
    raise typer.Exit(code=1)
