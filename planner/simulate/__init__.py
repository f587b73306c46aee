"""`plait simulate`: a discrete-event replay (SimPy) of a plan's pools, request by request.

    >>> from plait.planner.simulate import SimOptions, simulate   # simulate(graph, pools, SimOptions(...))

The simulator reads only plan.json's `pools`, the agent's traced graph and the cost model; it never imports
the analytic placement code (an import-linter contract in pyproject.toml keeps the two apart).
"""

from plait.planner.simulate.engine import simulate
from plait.planner.simulate.errors import SimulateError
from plait.planner.simulate.planfile import check_plan, load_plan, pools_of
from plait.planner.simulate.spec import CallStats, PoolStats, SimOptions, SimResult

__all__ = ["CallStats", "PoolStats", "SimOptions", "SimResult", "SimulateError", "check_plan", "load_plan",
           "pools_of", "simulate"]
