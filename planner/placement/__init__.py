"""Placement: the cheapest (candidate, replicas) per stage that meets the SLA, as a MILP solved by HiGHS."""

from plait.planner.placement.errors import (
    InfeasibleInventory,
    InfeasiblePlacement,
    InfeasibleSLA,
    PlacementInputError,
)
from plait.planner.placement.milp import solve
from plait.planner.placement.problem import (
    SLA,
    Candidate,
    Choice,
    Edge,
    LatencyCap,
    Link,
    Placement,
    PlacementProblem,
    PoolMember,
    PoolOption,
    SolveOptions,
    Stage,
    Stats,
    Transfer,
)

__all__ = [
    "SLA", "Candidate", "Choice", "Edge", "InfeasibleInventory", "InfeasiblePlacement", "InfeasibleSLA",
    "LatencyCap", "Link", "Placement", "PlacementInputError", "PlacementProblem", "PoolMember", "PoolOption",
    "SolveOptions", "Stage",
    "Stats", "Transfer", "solve",
]
