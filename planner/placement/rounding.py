"""An incumbent from the LP relaxation: in each stage take the fastest pair the LP uses, then cheapen.

Taking, per stage, the fastest pair in the LP's support never lengthens a stage beyond its LP value,
so the rounded point meets every path constraint unless a transfer appears that the LP priced
fractionally (then it is checked and dropped). Stages the LP split are then moved, one at a time,
to the cheapest pair of their support that keeps the exact evaluation feasible.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from plait.planner.placement.evaluate import REL_TOL, evaluate
from plait.planner.placement.graph import StageGraph, longest_path
from plait.planner.placement.options import Enumeration
from plait.planner.placement.problem import PlacementProblem


def round_lp(problem: PlacementProblem, g: StageGraph, en: Enumeration, x_off: list[int],
             x: NDArray[np.float64]) -> list[int] | None:
    """Feasible picks near the LP optimum x, or None when rounding breaks the SLA or the inventory."""
    picks: list[int] = []
    split: list[tuple[int, list[int]]] = []
    for i, s in enumerate(en.stages):
        xs = x[x_off[i]:x_off[i] + len(s)]
        sup = np.flatnonzero(xs > 1e-7)
        if len(sup) == 0:
            sup = np.arange(len(s))
        key = np.lexsort((s.cost[sup], s.d50[sup], s.d95[sup]))
        picks.append(int(sup[key[0]]))
        if len(sup) > 1:
            split.append((i, [int(k) for k in sup[np.argsort(s.cost[sup], kind="stable")]]))
    ev = evaluate(problem, g, en, picks)
    if not ev.feasible:
        return None
    so = en.stages
    dev = [en.devices[int(so[i].device[k])] for i, k in enumerate(picks)]
    d95 = [float(so[i].d95[k]) for i, k in enumerate(picks)]
    d50 = [float(so[i].d50[k]) for i, k in enumerate(picks)]
    xfer = [g.transfer_s(problem, e, dev[i], dev[j]) for e, (i, j) in enumerate(g.edges)]
    used = dict(ev.devices)
    for i, ks in split:
        for k in ks:
            if so[i].cost[k] >= so[i].cost[picks[i]]:
                break
            nd = en.devices[int(so[i].device[k])]
            new_x = {e: g.transfer_s(problem, e, nd if a == i else dev[a], nd if b == i else dev[b])
                     for e in g.preds[i] + g.succs[i] for a, b in [g.edges[e]]}
            t_d95, t_d50, t_x = d95.copy(), d50.copy(), xfer.copy()
            t_d95[i], t_d50[i] = float(so[i].d95[k]), float(so[i].d50[k])
            for e, v in new_x.items():
                t_x[e] = v
            t_used = dict(used)
            t_used[dev[i]] -= int(so[i].ndev[picks[i]])
            t_used[nd] = t_used.get(nd, 0) + int(so[i].ndev[k])
            if not _ok(problem, g, t_d95, t_d50, t_x, t_used):
                continue
            picks[i], dev[i], d95, d50, xfer, used = k, nd, t_d95, t_d50, t_x, t_used
            break
    return picks


def _ok(problem: PlacementProblem, g: StageGraph, d95: list[float], d50: list[float], xfer: list[float],
        used: dict[str, int]) -> bool:
    if any(d in problem.inventory and n > problem.inventory[d] for d, n in used.items()):
        return False
    for d, target in ((d95, problem.sla.p95_s), (d50, problem.sla.p50_s)):
        if target is not None and longest_path(g, d, xfer)[0] > target * (1 + REL_TOL):
            return False
    return True
