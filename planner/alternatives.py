"""The plan table's rows: each stage's chosen configuration, and the plan solved again with that stage pinned to
a few other device types (the cheapest whole plan that keeps it there, or infeasible).

Solving every (stage, type) pair would take seconds per stage, so each stage tries the PER_STAGE other types
(fewer when the stages are many, PINNED_SOLVES in all) whose lower bound on the pinned plan's $/hour is lowest:
the largest of the chosen plan's bill (pinning only removes options), the stage's cheapest configuration on that
type that leaves the SLA reachable, and one whole device of the type (of its servers' type for host CPUs).
"""

from __future__ import annotations

import time

import numpy as np

from plait.planner.catalog import Catalog
from plait.planner.contract import KINDS
from plait.planner.endpoint import REMOTE_PREFIX
from plait.planner.placement import (
    Choice,
    InfeasiblePlacement,
    Placement,
    PlacementProblem,
    SolveOptions,
    solve,
)
from plait.planner.placement.errors import SolverTimeLimit
from plait.planner.placement.floors import floor_bounds
from plait.planner.placement.graph import build_graph
from plait.planner.placement.options import enumerate_options
from plait.planner.placement.sweep import pin
from plait.planner.plan import Candidate as Row
from plait.planner.plan import Pool
from plait.planner.runtime import server

PER_STAGE = 2
"""Other device types solved again per stage (the lowest lower bounds first), fewer when the stages are many."""
PINNED_SOLVES = 4
"""Pinned solves per plan at most (about 0.1 s each on rag): 2 for each of 2 stages, 1 for each of 4; later stages
show the chosen row only. Eight made `plait plan` on rag take 1.8 s instead of 0.6 s on a loaded 2-core machine."""
PIN_TIME_S = 1.0
"""HiGHS time limit of one pinned solve (its gap shows on the row when it stops short of optimal)."""
BUDGET_S = 3.0
"""Wall-clock seconds the pinned solves may take in all: a plan of hundreds of stages costs seconds per solve."""


def _role(stage: str) -> str:
    """A stage's role when it has a pool of its own: prefill or decode (a split LLM side), encoder, search, tool."""
    kind = stage.split(":", 1)[0]
    return kind if kind in ("prefill", "decode") else KINDS.get(kind, kind)


def _cores(problem: PlacementProblem, catalog: Catalog, device: str, share: float) -> int:
    """Cores one replica holds on a CPU server or on the host CPUs of a GPU type's servers (0 elsewhere)."""
    if device in problem.hosts:
        return round(server(problem.hosts[device]).host_cores * share)
    if device.startswith(REMOTE_PREFIX):   # an endpoint: no cores of this fleet
        return 0
    spec = catalog.device(device)
    return round(spec.cores.value * share) if spec.kind == "cpu" and spec.cores is not None else 0


def _row(problem: PlacementProblem, catalog: Catalog, ch: Choice, plan_cost: float, **fields: object) -> Row:
    option = problem.pools[ch.pool_option] if ch.pool_option is not None else None
    cost = option.price_per_hour if option is not None else ch.cost_per_hour   # the whole pool, once
    base: dict[str, object] = {"role": (option.role if option is not None and option.role != "shared" else "")
                               or _role(ch.stage)}
    return Row.model_validate({**base, "stage": ch.stage, "device": ch.device, "replicas": ch.replicas,
                               "batch": ch.batch, "mode": ch.mode, "devices_per_replica": ch.devices_per_replica,
                               "share": ch.share, "latency_p95_s": ch.latency_p95_s, "cost_per_hour": cost,
                               "host": ch.device in problem.hosts, "plan_cost_per_hour": plan_cost,
                               "cores": _cores(problem, catalog, ch.device, ch.share),
                               "chosen": False, **fields})


def _ranked(problem: PlacementProblem, placement: Placement) -> list[list[str]]:
    """Per stage, the other device types by lower bound on the pinned plan's $/hour (ties: the stage's own cheaper
    configuration first, then the faster). A type is tried only if a configuration there leaves room for the
    rest of the longest path at the other stages' fastest (the MILP's own floor test)."""
    en = enumerate_options(problem, SolveOptions(prune=False))   # every type, not only undominated pairs
    bound = problem.sla.p95_s if problem.sla.p95_s is not None else float("inf")
    head, tail, f = floor_bounds(build_graph(problem), [float(so.d95.min()) for so in en.stages])
    device_price: dict[str, float] = {}   # one whole device: a plan with a stage on a type rents at least one
    for c in (c for st in problem.stages for c in st.candidates if c.price_per_hour > 0):
        device_price[c.device] = c.price_per_hour / (c.tp * c.share)
    for pool in problem.pools:
        device_price.setdefault(pool.device, pool.price_per_hour / (pool.tp * pool.replicas))
    for host, carrier in problem.hosts.items():   # host CPUs come with their servers' devices
        device_price[host] = device_price.get(carrier, 0.0)
    out = []
    for i, (st, so) in enumerate(zip(problem.stages, en.stages, strict=True)):
        chosen = placement.choice(st.name).device
        price = np.array([problem.pools[b].price_per_hour if b >= 0 else c
                          for b, c in zip(so.group, so.cost, strict=True)])
        best: dict[str, tuple[float, float, float]] = {}   # (bound, the stage's own $/hour, p95)
        for k in np.flatnonzero(head[i] + so.d95 + tail[i] - f[i] <= bound * (1 + 1e-9)).tolist():
            device = en.devices[int(so.device[k])]
            lower = max(float(price[k]), device_price.get(device, 0.0), placement.cost_per_hour)
            key = (lower, float(price[k]), float(so.d95[k]))
            if device != chosen and key < best.get(device, (np.inf,) * 3):
                best[device] = key
        out.append(sorted(best, key=lambda d: (best[d], d)))
    return out


def _pinned(problem: PlacementProblem, catalog: Catalog, stage: str, device: str, options: SolveOptions) -> Row:
    """The cheapest plan with `stage` on `device`: the stage's configuration there and the plan's $/hour."""
    pinned = pin(problem, stage, device)
    try:
        alt = solve(pinned, options)
    except (InfeasiblePlacement, ValueError) as err:   # no plan keeps it there (or none found in time)
        note = "not solved: HiGHS time limit" if isinstance(err, SolverTimeLimit) else str(err).splitlines()[0]
        return Row(stage=stage, device=device, replicas=0, batch=0, mode="", devices_per_replica=0,
                   latency_p95_s=0.0, cost_per_hour=0.0, chosen=False, host=device in problem.hosts,
                   plan_cost_per_hour=None, note=note)
    gap = alt.stats.mip_gap if alt.stats is not None else 0.0
    return _row(pinned, catalog, alt.choice(stage), alt.cost_per_hour,
                note=f"gap {gap:.0%}" if gap > 0.005 else "")


def plan_rows(problem: PlacementProblem, placement: Placement, pools: list[Pool], of_stage: dict[str, str],
              catalog: Catalog, options: SolveOptions | None) -> tuple[list[Row], str]:
    """The plan table's rows, the stages of one pool together (in `pools` order): each stage's chosen row, then a
    few other device types, each the plan solved again with the stage pinned there; and the table's note that
    says how many."""
    opts = (options or SolveOptions()).model_copy(update={"time_limit_s": PIN_TIME_S, "min_mip_s": 0.0})
    by_id = {p.id: p for p in pools}
    order = {p.id: n for n, p in enumerate(pools)}
    ranked = _ranked(problem, placement)
    n = len(problem.stages)
    per = max(1, min(PER_STAGE, PINNED_SOLVES // n))
    rows: list[Row] = []
    solved, stopped = 0, False
    start = time.perf_counter()
    for i in sorted(range(n), key=lambda i: (order[of_stage[problem.stages[i].name]], i)):
        name = problem.stages[i].name
        pool = by_id[of_stage[name]]
        rows.append(_row(problem, catalog, placement.choice(name), placement.cost_per_hour, chosen=True,
                         pool=pool.id, role=pool.role or pool.kind))
        for device in ranked[i][:per]:
            if solved >= PINNED_SOLVES or time.perf_counter() - start > BUDGET_S:
                stopped = True
                break
            rows.append(_pinned(problem, catalog, name, device, opts))
            solved += 1
    note = (f"other rows: the whole plan solved again with the stage pinned to another device type, for the {per} "
            f"type{'s' if per > 1 else ''} with the lowest lower bound on the plan's $/hour (HiGHS, "
            f"{PIN_TIME_S:g} s each)")
    if stopped:
        note += (f"; {solved} solves in all (at most {PINNED_SOLVES}, {BUDGET_S:g} s), so later stages show their "
                 "chosen row only")
    return rows, note
