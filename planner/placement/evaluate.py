"""Exact evaluation of one pair per stage (whole-device cost, longest paths, inventory) and its Placement."""

from __future__ import annotations

from plait.planner.placement.graph import Evaluation, StageGraph, longest_path
from plait.planner.placement.options import Enumeration, whole
from plait.planner.placement.problem import Choice, Placement, PlacementProblem, Stats, Transfer

REL_TOL = 1e-7


def fleet(en: Enumeration, picks: list[int]) -> tuple[float, dict[str, int], dict[str, float]]:
    """(whole-device bill, whole devices per type, units per type) of picking pair picks[i] for stage i.

    A type without slices costs the sum of its pairs' costs (its units are integral); a sliced type
    costs its device price times its units rounded up: slices of different stages share devices.
    """
    units: dict[str, float] = {}
    cost = 0.0
    for i, k in enumerate(picks):
        s = en.stages[i]
        D = int(s.device[k])
        units[en.devices[D]] = units.get(en.devices[D], 0.0) + float(s.units[k])
        if not en.sliced[D]:
            cost += float(s.cost[k])
    devices = {d: whole(u) for d, u in units.items()}
    for D, d in enumerate(en.devices):
        if en.sliced[D] and d in devices:
            cost += en.price[D] * devices[d]
    return cost, devices, units


def evaluate(problem: PlacementProblem, g: StageGraph, en: Enumeration, picks: list[int]) -> Evaluation:
    """Cost, p95/p50 critical-path latency and violations of picking pair picks[i] for stage i."""
    so = en.stages
    dev = [en.devices[int(so[i].device[k])] for i, k in enumerate(picks)]
    d95 = [float(so[i].d95[k]) for i, k in enumerate(picks)]
    d50 = [float(so[i].d50[k]) for i, k in enumerate(picks)]
    xfer = [g.transfer_s(problem, e, dev[i], dev[j]) for e, (i, j) in enumerate(g.edges)]
    p95, start, crit = longest_path(g, d95, xfer)
    p50, _, _ = longest_path(g, d50, xfer)
    cost, devices, _ = fleet(en, picks)
    bad = []
    if problem.sla.p95_s is not None and p95 > problem.sla.p95_s * (1 + REL_TOL):
        bad.append(f"p95 {p95 * 1e3:.3f} ms exceeds the SLA's {problem.sla.p95_s * 1e3:.3f} ms")
    if problem.sla.p50_s is not None and p50 > problem.sla.p50_s * (1 + REL_TOL):
        bad.append(f"p50 {p50 * 1e3:.3f} ms exceeds the SLA's {problem.sla.p50_s * 1e3:.3f} ms")
    for d, n in sorted(devices.items()):
        if d in problem.inventory and n > problem.inventory[d]:
            bad.append(f"uses {n} {d} devices; the inventory has {problem.inventory[d]}")
    return Evaluation(cost, p95, p50, start, crit, devices, bad)


def to_placement(problem: PlacementProblem, g: StageGraph, en: Enumeration, picks: list[int],
                 stats: Stats | None = None) -> Placement:
    """The Placement (choices, transfers, critical path) for picks, evaluated exactly."""
    ev = evaluate(problem, g, en, picks)
    choices = []
    for i, k in enumerate(picks):
        st, so = problem.stages[i], en.stages[i]
        c = st.candidates[int(so.cand[k])]
        choices.append(Choice(
            stage=st.name, candidate=int(so.cand[k]), device=c.device, replicas=int(so.replicas[k]),
            devices_per_replica=c.tp, share=c.share, batch=c.batch, mode=c.mode, label=c.label, visits=st.visits,
            service_s=c.latency_s, latency_p50_s=float(so.d50[k]), latency_p95_s=float(so.d95[k]),
            utilization=float(so.util[k]), cost_per_hour=float(so.cost[k])))
    transfers = []
    for e, (i, j) in enumerate(g.edges):
        a, b = choices[i].device, choices[j].device
        if a != b:
            per_req = g.edge_visits[e] * g.edge_bytes[e]
            transfers.append(Transfer(
                src_stage=g.names[i], dst_stage=g.names[j], src_device=a, dst_device=b,
                bytes_per_request=per_req, bandwidth_gb_s=per_req * problem.qps / 1e9,
                seconds=g.transfer_s(problem, e, a, b)))
    return Placement(
        choices=choices, cost_per_hour=ev.cost, p95_s=ev.p95, p50_s=ev.p50,
        critical_path=[g.names[i] for i in ev.critical],
        start_s={g.names[i]: ev.start[i] for i in range(len(g.names))},
        transfers=transfers, devices=dict(sorted(ev.devices.items())), feasible=ev.feasible,
        violations=ev.violations, stats=stats)
