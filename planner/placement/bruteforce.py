"""Brute force: every combination of (candidate, replicas) pairs, unpruned; the tests' ground truth.

Pool options (PlacementProblem.pools) are taken by all the stages they serve or by none, and an edge
inside one costs no transfer. The cost of a combination is the whole-device bill: the pro-rata costs on types without slices plus
price x ceil(units) on sliced types. All combinations are scored at once with numpy (bill, inventory,
both longest paths with a slightly loose tolerance, a superset of the feasible ones); then, cheapest
first, each is checked exactly by `evaluate` and the first feasible one is the answer.
"""

from __future__ import annotations

import numpy as np

from plait.planner.placement.evaluate import REL_TOL, evaluate, to_placement
from plait.planner.placement.graph import build_graph
from plait.planner.placement.options import UNIT_TOL, enumerate_options
from plait.planner.placement.problem import Placement, PlacementProblem, SolveOptions


def brute_force(problem: PlacementProblem, options: SolveOptions | None = None,
                limit: int = 2_000_000) -> Placement | None:
    """The cheapest feasible combination over all pairs (no pruning), or None when none is feasible."""
    opts = (options or SolveOptions()).model_copy(update={"prune": False})
    g = build_graph(problem)
    en = enumerate_options(problem, opts)
    sizes = [len(s) for s in en.stages]
    total = int(np.prod(sizes, dtype=np.int64))
    if total > limit:
        raise ValueError(f"brute force over {total} combinations exceeds the limit of {limit}")
    combo = np.indices(sizes).reshape(len(sizes), -1)  # combo[i, n]: the pair stage i takes in combination n
    sliced, price = np.asarray(en.sliced, dtype=bool), np.asarray(en.price, dtype=float)
    n_types = len(en.devices)
    units = np.zeros((n_types, total))
    cost = np.zeros(total)
    dev = []
    for i, s in enumerate(en.stages):
        k = combo[i]
        dev.append(s.device[k])
        np.add.at(units, (s.device[k], np.arange(total)), s.units[k])
        cost += np.where(sliced[s.device[k]], 0.0, s.cost[k])
    rented = np.maximum(np.ceil(units - UNIT_TOL), 0.0)
    cost += (price[:, None] * np.where(sliced[:, None], rented, 0.0)).sum(axis=0)
    ok = np.ones(total, dtype=bool)
    for D, name in enumerate(en.devices):
        if name in problem.inventory:
            ok &= rented[D] <= problem.inventory[name]
    for H, D in en.hosts.items():   # host cores within the rented devices of their carrier
        ok &= units[H] <= rented[D] + UNIT_TOL
    grp = [s.group[combo[i]] for i, s in enumerate(en.stages)]
    ix = {s.name: i for i, s in enumerate(problem.stages)}
    for b, pool in enumerate(problem.pools):   # a pool option is taken by all of its stages or none
        took = [grp[ix[m.stage]] == b for m in pool.members]
        for t in took[1:]:
            ok &= t == took[0]
    names = en.devices
    for attr, target in (("d95", problem.sla.p95_s), ("d50", problem.sla.p50_s)):
        if target is None:
            continue
        d = [getattr(s, attr)[combo[i]] for i, s in enumerate(en.stages)]
        start = [np.zeros(total) for _ in en.stages]
        for j in g.order:
            for e in g.preds[j]:
                i = g.edges[e][0]
                table = np.array([[g.transfer_s(problem, e, a, b) for b in names] for a in names])
                same_pool = (grp[i] >= 0) & (grp[i] == grp[j])
                start[j] = np.maximum(start[j], start[i] + d[i] + np.where(same_pool, 0.0, table[dev[i], dev[j]]))
        finish = np.max([start[i] + d[i] for i in range(len(en.stages))], axis=0)
        ok &= finish <= target * (1 + 10 * REL_TOL)
    for n in np.flatnonzero(ok)[np.argsort(cost[ok], kind="stable")]:
        picks = [int(v) for v in combo[:, n]]
        if evaluate(problem, g, en, picks, opts.max_utilization).feasible:
            return to_placement(problem, g, en, picks)
    return None
