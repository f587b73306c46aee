"""The simulator's user errors: what broke, where, and how to fix it."""

from __future__ import annotations

from plait.sdk.errors import PlaitError


class SimulateError(PlaitError):
    """A plan, pool list or option the simulator cannot run (missing plan.json, stale plan, unknown pool)."""
