"""Errors a placement raises: the input is malformed, or no fleet meets the SLA and the inventory."""

from __future__ import annotations

from plait.sdk.errors import PlaitError


class PlacementInputError(PlaitError, ValueError):
    """The placement problem is malformed (an edge names an unknown stage, the stages form a cycle)."""


class InfeasiblePlacement(PlaitError):
    """No choice of (candidate, replicas) per stage meets the SLA within the inventory."""


class InfeasibleSLA(InfeasiblePlacement):
    """A latency target is below what the fastest devices can do (a stage floor or the critical path)."""


class InfeasibleInventory(InfeasiblePlacement):
    """The inventory cannot hold enough replicas for the request rate."""


class SolverTimeLimit(InfeasiblePlacement):
    """HiGHS stopped at its time limit before it found any placement (one may still exist)."""
