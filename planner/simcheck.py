"""`plait plan`'s check of its plan by simulation: replay the chosen plan, and where the simulated p95 (or p50,
TTFT, TPOT) misses a target, plan again with the internal target tightened, at most five times.

The analytic placement and the simulator never import each other (an import-linter contract); this module
sits beside both and only passes plan.json's model from one to the other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from plait.planner.catalog import Catalog
from plait.planner.plan import Plan, SimCheck
from plait.planner.planning import PlanResult, Targets, targets_of
from plait.planner.simulate import SimOptions, SimResult, check_plan, pools_of, simulate
from plait.sdk.errors import PlaitError
from plait.sdk.graph import AgentGraph

REQUESTS = 2000
SEED = 0
MAX_REPLANS = 5
FRONTIER_REQUESTS = 1000


def simulate_plan(plan: Plan, graph: AgentGraph, catalog: Catalog, *, requests: int = REQUESTS,
                  seed: int = SEED) -> SimResult:
    """Replay `plan` for `requests` Poisson arrivals at its rate, seed `seed`, against the graph's targets."""
    targets = targets_of(graph)
    sites = check_plan(plan, graph, catalog)
    options = SimOptions(requests=requests, qps=plan.qps, seed=seed, sla_p95_s=targets.p95_s,
                         ttft_s=targets.ttft_s, tpot_s=targets.tpot_s)
    return simulate(graph, pools_of(plan), options, catalog=catalog, sites=sites)


def figures(plan: Plan, result: SimResult, targets: Targets, *, requests: int, seed: int) -> SimCheck:
    """The simulated figures beside the analytic ones, and the targets they miss, in words."""
    # TTFT in both views: from the request's arrival to each LLM call's first token (its first execution)
    ttft = max((c.first_token.p95 for c in result.calls if c.first_token.n and c.llm), default=None)
    tpot = max((c.tpot.p95 for c in result.calls if c.tpot.n), default=None)
    check = SimCheck(requests=result.requests, seed=seed, p50_s=result.e2e.p50, p95_s=result.e2e.p95,
                     ttft_p95_s=ttft, tpot_p95_s=tpot, analytic_ttft_p95_s=plan.ttft_p95_s,
                     ttft_target_s=targets.ttft_s, tpot_target_s=targets.tpot_s, within_sla=result.within_sla)
    return check.model_copy(update={"misses": [f"{name} {sim * 1e3:,.1f} ms simulated > target {target * 1e3:,.1f} ms"
                                               for name, target, sim in _pairs(check, targets)
                                               if sim is not None and sim > target]})


def _pairs(check: SimCheck, targets: Targets) -> list[tuple[str, float, float | None]]:
    pairs = (("p95", targets.p95_s, check.p95_s), ("p50", targets.p50_s, check.p50_s),
             ("TTFT p95", targets.ttft_s, check.ttft_p95_s), ("TPOT p95", targets.tpot_s, check.tpot_p95_s))
    return [(name, target, sim) for name, target, sim in pairs if target is not None]


def busiest(result: SimResult) -> str | None:
    """The busiest pool (utilization) and the one with the longest queue waits, in words."""
    if not result.pools:
        return None
    hot = max(result.pools, key=lambda p: p.utilization)
    slow = max(result.pools, key=lambda p: p.wait.p95)
    line = f"busiest pool {hot.id} ({hot.device} x {hot.replicas}, utilization {hot.utilization:.2f})"
    if slow.id != hot.id and slow.wait.p95 > hot.wait.p95:
        line += f"; longest queue waits in {slow.id} (p95 {slow.wait.p95 * 1e3:,.1f} ms)"
    return line


def tightened(internal: Targets, user: Targets, check: SimCheck) -> Targets:
    """Each missed target's internal value scaled by target / simulated."""
    scaled = {}
    for field, name in (("p95_s", "p95"), ("p50_s", "p50"), ("ttft_s", "TTFT p95"), ("tpot_s", "TPOT p95")):
        for pair_name, target, sim in _pairs(check, user):
            if pair_name == name and sim is not None and sim > target:
                scaled[field] = getattr(internal, field) * target / sim
    return replace(internal, **scaled)


def check_by_simulation(graph: AgentGraph, first: PlanResult, replan: Callable[[Targets], PlanResult],
                        simulate_fn: Callable[[Plan], SimResult], *, requests: int = REQUESTS, seed: int = SEED,
                        max_replans: int = MAX_REPLANS) -> PlanResult:
    """Simulate `first`'s plan; while it misses a target, re-plan with tightened internal targets (at most
    `max_replans` times). Returns the last plan tried, with `simulated` filled in, the user's SLA on it."""
    user = targets_of(graph)
    internal = user
    result = first
    sim = simulate_fn(result.plan)
    check = figures(result.plan, sim, user, requests=requests, seed=seed)
    replans: list[str] = []
    while check.misses and len(replans) < max_replans:
        missed = "; ".join(check.misses)
        internal = tightened(internal, user, check)
        try:
            candidate = replan(internal)
        except PlaitError as err:
            replans.append(f"re-plan {len(replans) + 1}: simulation missed {missed}; no plan meets the tightened targets "
                           f"({_targets(internal)}): {str(err).splitlines()[0]}")
            break
        result = candidate
        sim = simulate_fn(result.plan)
        check = figures(result.plan, sim, user, requests=requests, seed=seed)
        replans.append(f"re-plan {len(replans) + 1}: simulation missed {missed}; planned with internal {_targets(internal)}: "
                       f"${result.plan.cost_per_hour:,.2f}/hour, simulated p95 {check.p95_s * 1e3:,.1f} ms"
                       + (f", still misses {'; '.join(check.misses)}" if check.misses else ", meets every target"))
    check = check.model_copy(update={"replans": replans, "busiest": busiest(sim) if check.misses else None})
    plan = result.plan.model_copy(update={"simulated": check, "sla_p95_s": user.p95_s, "sla_p50_s": user.p50_s,
                                          "sla_ttft_s": user.ttft_s, "sla_tpot_s": user.tpot_s})
    return replace(result, plan=plan)


def _targets(t: Targets) -> str:
    parts = [(name, v) for name, v in (("p95", t.p95_s), ("p50", t.p50_s), ("TTFT", t.ttft_s), ("TPOT", t.tpot_s))
             if v is not None]
    return ", ".join(f"{name} {v * 1e3:,.1f} ms" for name, v in parts)


def simulate_frontier(plan: Plan, graph: AgentGraph, catalog: Catalog, *, requests: int = FRONTIER_REQUESTS,
                      seed: int = SEED) -> Plan:
    """Each frontier point's plan replayed (`requests` Poisson arrivals at the plan's rate): its simulated p95."""
    if not any(p.pools for p in plan.frontier):
        return plan
    sites = check_plan(plan, graph, catalog)   # one graph for every point: lowered once
    options = SimOptions(requests=requests, qps=plan.qps, seed=seed)
    points = [p.model_copy(update={"simulated_p95_s": simulate(graph, p.pools, options, catalog=catalog,
                                                               sites=sites).e2e.p95}) if p.pools else p
              for p in plan.frontier]
    return plan.model_copy(update={"frontier": points})
