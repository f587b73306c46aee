"""Latency and throughput floors: the fastest each stage can be, and the errors when targets are below them.

A stage's floor f_i is its fastest kept pair's per-request latency (the fastest candidate, with enough
replicas that queueing has all but vanished). Transfers only add time, so the longest path of floors
is a lower bound on any placement's end-to-end latency: when it exceeds the SLA, no placement exists,
and the error names the stages that make it so.
"""

from __future__ import annotations

import numpy as np

from plait.planner.placement.errors import InfeasibleInventory, InfeasibleSLA
from plait.planner.placement.graph import StageGraph, longest_path
from plait.planner.placement.options import Enumeration, passes_caps, whole
from plait.planner.placement.problem import PlacementProblem, Stage


def floor_bounds(g: StageGraph, f: list[float]) -> tuple[list[float], list[float], list[float]]:
    """(head, tail, f): longest floor path into each stage (excluding it), and from it (including it)."""
    head = [0.0] * len(f)
    for j in g.order:
        for e in g.preds[j]:
            i = g.edges[e][0]
            head[j] = max(head[j], head[i] + f[i])
    tail = list(f)
    for i in reversed(g.order):
        for e in g.succs[i]:
            j = g.edges[e][1]
            tail[i] = max(tail[i], f[i] + tail[j])
    return head, tail, f


def ms_text(s: float) -> str:
    """Milliseconds as people write them: 38, 2.5, 0.12, 6720 (never 6.72e+03)."""
    ms = s * 1e3
    return "inf" if ms == float("inf") else f"{ms:.0f}" if ms >= 100 else f"{ms:.4g}"


def check_caps(problem: PlacementProblem) -> None:
    """Raise InfeasibleSLA when no candidate of a stage meets its per-stage latency caps."""
    ok = passes_caps(problem)
    pooled = {m.stage for p in problem.pools for m in p.members}
    for st, ks in zip(problem.stages, ok, strict=True):
        if ks or st.name in pooled:   # pool options are capped by whoever makes them
            continue
        for cap in st.caps:
            per_unit = [c.latency_s / cap.units for c in st.candidates]
            best = st.candidates[per_unit.index(min(per_unit))]
            need = min(per_unit)
            if need > cap.max_s:
                raise InfeasibleSLA(
                    f"{st.what} needs at least {ms_text(need)} ms per {cap.per} on the fastest device "
                    f"({best.device}); the {cap.name} allows {ms_text(cap.max_s)}.\n"
                    f"  stage '{st.name}': {len(st.candidates)} candidates, none under {ms_text(cap.max_s)} ms "
                    f"per {cap.per}\nTo fix: relax the {cap.name} to at least {ms_text(need)} ms, or add a "
                    "faster device (or a higher tensor-parallel degree) to the catalog.")
        raise InfeasibleSLA(
            f"{st.what} has no candidate meeting all its caps at once "
            f"({', '.join(c.name for c in st.caps)}).\nTo fix: relax one of them.")


def _execution(st: Stage, latency_s: float, attr: str) -> str:
    """How one stage's floor is made, in words, on the p95 ("d95") or the p50 ("d50") clock."""
    serial = st.visits / st.concurrency
    if attr == "d95":
        serial = st.serial_p95 if st.serial_p95 is not None else serial
        long = f", {ms_text(latency_s * st.work_p95)} ms for a long one" if st.work_p95 > 1 + 1e-9 else ""
        return f"{ms_text(latency_s)} ms per execution{long} x {serial:.3g} in series at p95"
    return f"{ms_text(latency_s)} ms per execution x {st.clock50:.3g} in series"


def check_floors(problem: PlacementProblem, g: StageGraph, en: Enumeration) -> None:
    """Raise InfeasibleSLA / InfeasibleInventory when a floor alone already breaks the targets."""
    check_caps(problem)
    _check_inventory(problem, en)
    for attr, target, label in (("d95", problem.sla.p95_s, "p95"), ("d50", problem.sla.p50_s, "p50")):
        if target is None:
            continue
        f = [float(getattr(s, attr).min()) for s in en.stages]
        for i, st in enumerate(problem.stages):
            if f[i] > target * (1 + 1e-9):
                so = en.stages[i]
                k = int(np.argmin(getattr(so, attr)))
                if (b := int(so.group[k])) >= 0:
                    how = f"{problem.pools[b].device}: {problem.pools[b].label}"
                else:
                    c = st.candidates[int(so.cand[k])]
                    how = f"{c.device}: {_execution(st, c.latency_s, attr)}"
                raise InfeasibleSLA(
                    f"{st.what} needs at least {ms_text(f[i])} ms per request on the fastest device "
                    f"({how}); "
                    f"the SLA {label} allows {ms_text(target)}.\n"
                    f"To fix: relax the SLA {label} to at least {ms_text(f[i])} ms, cut the stage's expected "
                    "visits, or add a faster device to the catalog.")
        total, _, path = longest_path(g, f, [0.0] * len(g.edges))
        if total > target * (1 + 1e-9):
            top = sorted(path, key=lambda i: -f[i])[:3]
            worst = ", ".join(f"{problem.stages[i].what} {ms_text(f[i])} ms" for i in top)
            raise InfeasibleSLA(
                f"the critical path needs at least {ms_text(total)} ms even with every stage on its fastest "
                f"device; the SLA {label} allows {ms_text(target)} (over by {ms_text(total - target)} ms).\n"
                f"  path: {' -> '.join(g.names[i] for i in path)}\n  largest floors: {worst}\n"
                f"To fix: relax the SLA {label} to at least {ms_text(total)} ms, or shorten those stages.")


def _check_inventory(problem: PlacementProblem, en: Enumeration) -> None:
    """Throughput floor vs inventory: each stage alone, then stages tied to one limited type.

    Needs are in units (slices pack), compared as whole devices.
    """
    inv = problem.inventory
    tied: dict[str, list[tuple[int, float]]] = {}
    for i, (st, so) in enumerate(zip(problem.stages, en.stages, strict=True)):
        need: dict[str, float] = {}
        for D, n in zip(so.device, so.units, strict=True):
            name = en.devices[int(D)]
            need[name] = min(need.get(name, np.inf), float(n))
        if any(d not in inv or whole(n) <= inv[d] for d, n in need.items()):
            if len(need) == 1 and (d := next(iter(need))) in inv:
                tied.setdefault(d, []).append((i, need[d]))
            continue
        d, n = min(need.items(), key=lambda kv: whole(kv[1]) - inv[kv[0]])
        w = whole(n)
        raise InfeasibleInventory(
            f"{st.what} needs at least {w} {d} devices to serve {problem.qps * st.visits:g} executions/s "
            f"at a stable utilization; the inventory has {inv[d]}.\n"
            f"To fix: add {w - inv[d]} {d} to the inventory, lower the request rate, or allow another device.")
    for d, users in tied.items():
        total = whole(sum(n for _, n in users))
        if total > inv[d]:
            names = ", ".join(f"{problem.stages[i].name} ({n:g})" for i, n in users)
            raise InfeasibleInventory(
                f"stages that can only run on {d} need at least {total} of them together; the inventory "
                f"has {inv[d]}.\n  {names}\nTo fix: add {total - inv[d]} {d} to the inventory.")
