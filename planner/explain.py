"""Why the plan's LLM pools are unified or split: the cheapest plan of the other kind, solved, in words."""

from __future__ import annotations

from plait.planner.placement import InfeasiblePlacement, Placement, PlacementProblem, SolveOptions, solve

SPLIT = ("prefill", "decode")


def _fleet(placement: Placement, problem: PlacementProblem, roles: tuple[str, ...]) -> str:
    """Where the pools of `roles` run in `placement`, e.g. 'prefill on a40, decode on mi300x'."""
    seen: dict[str, list[str]] = {}
    for c in placement.choices:
        if c.pool_option is not None:
            role = problem.pools[c.pool_option].role
        else:
            role = "prefill" if c.stage.startswith("prefill:") else ""
        if role not in roles:
            continue
        where = f"{c.devices_per_replica} x {c.device}" if c.devices_per_replica > 1 else c.device
        if where not in seen.setdefault(role, []):
            seen[role].append(where)
    return ", ".join(f"{role} on {' and '.join(devices)}" for role, devices in seen.items())


def serving_decision(problem: PlacementProblem, placement: Placement, options: SolveOptions | None) -> list[str]:
    """One sentence: the chosen kind of LLM pool against the cheapest plan that uses only the other kind."""
    roles = {problem.pools[c.pool_option].role for c in placement.choices if c.pool_option is not None} & {
        "unified", *SPLIT}
    if not roles:
        return []
    chosen = "unified" if "unified" in roles else "split"
    drop = ("unified",) if chosen == "unified" else SPLIT
    other = problem.model_copy(update={"pools": [p for p in problem.pools if p.role not in drop]})
    if chosen == "split":   # unified only: the stages pools serve lose their own candidates
        served = {m.stage for p in other.pools if p.role == "unified" for m in p.members}
        other = other.model_copy(update={"stages": [s.model_copy(update={"candidates": []}) if s.name in served
                                                    else s for s in other.stages]})
    here = _fleet(placement, problem, ("unified",) if chosen == "unified" else SPLIT)
    alt_kind = "split" if chosen == "unified" else "unified"
    try:
        alt = solve(other, options)
    except (InfeasiblePlacement, ValueError):
        return [f"LLM pools {chosen} ({here}): no {alt_kind} plan meets the SLA at {problem.qps:g} req/s"]
    there = _fleet(alt, other, SPLIT if chosen == "unified" else ("unified",))
    saving = 1.0 - placement.cost_per_hour / alt.cost_per_hour if alt.cost_per_hour > 0 else 0.0
    # within a cent an hour is as cheap: devices one has (plait calibrate's `local`) cost only a tie-break
    cheaper = saving >= 0.005 and alt.cost_per_hour - placement.cost_per_hour >= 0.005
    than = f"{saving:.0%} cheaper than" if cheaper else "as cheap as"
    return [f"LLM pools {chosen} ({here}): {than} the cheapest {alt_kind} plan ({there}, "
            f"${alt.cost_per_hour:,.2f}/hour) at {problem.qps:g} req/s"]
