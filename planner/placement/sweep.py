"""Many solves of one problem: the homogeneous baselines (one device type each) and the cost-vs-SLA frontier."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pydantic import BaseModel, ConfigDict

from plait.planner.placement.errors import InfeasiblePlacement
from plait.planner.placement.milp import solve
from plait.planner.placement.problem import Placement, PlacementProblem, SolveOptions


class Baseline(BaseModel):
    """The cheapest fleet of one device type (stages without a candidate on it keep all theirs)."""

    model_config = ConfigDict(extra="forbid")
    device: str
    feasible: bool
    cost_per_hour: float | None = None
    p95_s: float | None = None
    reason: str = ""
    placement: Placement | None = None


class FrontierPoint(BaseModel):
    """The cheapest fleet for one p95 target; None where no fleet meets it."""

    model_config = ConfigDict(extra="forbid")
    sla_p95_s: float
    cost_per_hour: float | None
    p95_s: float | None = None
    placement: Placement | None = None


def covered(problem: PlacementProblem, device: str) -> set[str]:
    """Stages that can run on `device`: a candidate there, or a pool option there serving them."""
    return ({st.name for st in problem.stages if any(_on(problem, c.device, device) for c in st.candidates)}
            | {m.stage for p in problem.pools if p.device == device for m in p.members})


def _on(problem: PlacementProblem, candidate_device: str, device: str) -> bool:
    """A candidate runs on `device`: on the type itself, or on the host CPUs of its servers."""
    return candidate_device == device or problem.hosts.get(candidate_device) == device


def limit(problem: PlacementProblem, names: set[str], on: Callable[[str], bool]) -> PlacementProblem:
    """The problem with the stages in `names` limited to their candidates and pool options on devices that pass
    `on` (pool options elsewhere that serve any of them dropped; other stages keep all theirs)."""
    stages = [st.model_copy(update={"candidates": [c for c in st.candidates if on(c.device)]})
              if st.name in names else st for st in problem.stages]
    pools = [p for p in problem.pools if on(p.device) or not any(m.stage in names for m in p.members)]
    return problem.model_copy(update={"stages": stages, "pools": pools})


def restrict(problem: PlacementProblem, device: str) -> PlacementProblem:
    """The problem with every stage that can run on `device` limited to its candidates and pool options there
    (the others keep all theirs, and the pool options serving only them)."""
    return limit(problem, covered(problem, device), lambda d: _on(problem, d, device))


def pin(problem: PlacementProblem, stage: str, device: str) -> PlacementProblem:
    """The problem with one stage pinned to `device` exactly (a host type is its own: `l4/host`)."""
    return limit(problem, {stage}, lambda d: d == device)


def homogeneous_baselines(problem: PlacementProblem, options: SolveOptions | None = None) -> list[Baseline]:
    """For each device type, the cheapest fleet that puts every stage it can run on that type."""
    out = []
    types = ({c.device for s in problem.stages for c in s.candidates} | {p.device for p in problem.pools}) - set(
        problem.hosts)
    for device in sorted(types):
        try:
            p = solve(restrict(problem, device), options)
        except InfeasiblePlacement as err:
            out.append(Baseline(device=device, feasible=False, reason=str(err).splitlines()[0]))
            continue
        out.append(Baseline(device=device, feasible=True, cost_per_hour=p.cost_per_hour, p95_s=p.p95_s,
                            placement=p))
    return out


def frontier(problem: PlacementProblem, slas_p95_s: Sequence[float], options: SolveOptions | None = None,
             progress: Callable[[int, int, float], None] | None = None) -> list[FrontierPoint]:
    """Cheapest $/hour at each p95 target; `progress(done, total, sla)` is called after each solve."""
    out = []
    for n, sla in enumerate(slas_p95_s, start=1):
        try:
            p = solve(problem.model_copy(update={"sla": problem.sla.model_copy(update={"p95_s": sla})}), options)
            out.append(FrontierPoint(sla_p95_s=sla, cost_per_hour=p.cost_per_hour, p95_s=p.p95_s, placement=p))
        except InfeasiblePlacement:
            out.append(FrontierPoint(sla_p95_s=sla, cost_per_hour=None))
        if progress is not None:
            progress(n, len(slas_p95_s), sla)
    return out
