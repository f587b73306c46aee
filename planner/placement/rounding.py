"""An incumbent from the LP relaxation: in each stage take the fastest pair the LP uses, then cheapen.

Pool options serving several stages are left out (each stage takes its own pair or a pool serving it
alone), so the picks are consistent; the MILP, started from them, may then join stages into pools.

Taking, per stage, the fastest pair in the LP's support never lengthens a stage beyond its LP value,
so the rounded point meets every path constraint unless a transfer appears that the LP priced
fractionally (then it is checked and dropped). Stages the LP split are then moved, one at a time,
to the cheapest pair of their support (by the whole-device bill) that keeps the exact evaluation feasible.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from plait.planner.placement.evaluate import REL_TOL, edge_times, evaluate, fleet
from plait.planner.placement.graph import StageGraph, longest_path
from plait.planner.placement.options import Enumeration, whole
from plait.planner.placement.problem import PlacementProblem


def _joint(problem: PlacementProblem, en: Enumeration, x_off: list[int], x: NDArray[np.float64],
           alone: NDArray[np.bool_]) -> dict[int, int]:
    """Stage -> pair, for the pools serving several stages that the LP uses most, taken while their stages
    are free (the linking rows give every member of one pool the same LP value)."""
    value: dict[int, float] = {}
    pair: dict[int, list[tuple[int, int]]] = {}
    for i, s in enumerate(en.stages):
        for k in np.flatnonzero((s.group >= 0) & ~alone[s.group]).tolist():
            b = int(s.group[k])
            value[b] = float(x[x_off[i] + k])
            pair.setdefault(b, []).append((i, k))
    out: dict[int, int] = {}
    for b in sorted((b for b, v in value.items() if v > 1e-7), key=lambda b: (-value[b], b)):
        if all(i not in out for i, _ in pair[b]):
            out.update(dict(pair[b]))
    return out


def round_lp(problem: PlacementProblem, g: StageGraph, en: Enumeration, x_off: list[int],
             x: NDArray[np.float64], joint: bool = True) -> list[int] | None:
    """Feasible picks near the LP optimum x, or None when rounding breaks the SLA or the inventory."""
    picks: list[int] = []
    split: list[tuple[int, list[int]]] = []
    alone = np.array([len(p.members) == 1 for p in problem.pools] + [True], dtype=bool)   # [-1]: no pool
    taken = _joint(problem, en, x_off, x, alone) if joint else {}
    for i, s in enumerate(en.stages):
        if i in taken:
            picks.append(taken[i])
            continue
        xs = x[x_off[i]:x_off[i] + len(s)]
        own = alone[s.group]   # pools serving other stages too are left to the MILP: picks stay consistent
        if en.hosts and (own & ~np.isin(s.device, list(en.hosts))).any():
            own &= ~np.isin(s.device, list(en.hosts))   # host workers need their carrier rented: left to the MILP
        sup = np.flatnonzero((xs > 1e-7) & own)
        if len(sup) == 0 and own.any():   # the LP used pools serving other stages: as fast, cheapest
            lp_d95 = float(xs @ s.d95)
            sup = np.flatnonzero(own & (s.d95 <= lp_d95 * (1 + 1e-9)))
            sup = sup[np.argsort(s.cost[sup], kind="stable")[:1]] if len(sup) else np.flatnonzero(own)
        elif len(sup) == 0:
            sup = np.arange(len(s))
        key = np.lexsort((s.cost[sup], s.d50[sup], s.d95[sup]))
        picks.append(int(sup[key[0]]))
        if len(sup) > 1:
            split.append((i, [int(k) for k in sup[np.argsort(s.cost[sup], kind="stable")]]))
    ev = evaluate(problem, g, en, picks)
    if not ev.feasible:
        return round_lp(problem, g, en, x_off, x, joint=False) if taken else None
    first = list(picks)
    so = en.stages
    dev = [en.devices[int(so[i].device[k])] for i, k in enumerate(picks)]
    d95 = [float(so[i].d95[k]) for i, k in enumerate(picks)]
    d50 = [float(so[i].d50[k]) for i, k in enumerate(picks)]
    xfer = edge_times(problem, g, en, picks)
    units = fleet(en, picks)[2]
    dix = {d: D for D, d in enumerate(en.devices)}
    for i, ks in split:
        k0 = picks[i]
        for k in ks:
            if not alone[so[i].group[k]] or not alone[so[i].group[k0]]:
                continue   # pool options serving other stages move together with them: left to the MILP
            D0, D1 = int(so[i].device[k0]), int(so[i].device[k])
            if not en.sliced[D0] and not en.sliced[D1] and so[i].cost[k] >= so[i].cost[k0]:
                break  # sorted by cost: no later pair is cheaper
            nd = en.devices[D1]
            t_units = dict(units)
            t_units[dev[i]] -= float(so[i].units[k0])
            t_units[nd] = t_units.get(nd, 0.0) + float(so[i].units[k])
            if _bill(en, dix, i, k, t_units) >= _bill(en, dix, i, k0, units):
                continue
            new_x = {e: g.transfer_s(problem, e, nd if a == i else dev[a], nd if b == i else dev[b])
                     for e in g.preds[i] + g.succs[i] for a, b in [g.edges[e]]}
            t_d95, t_d50, t_x = d95.copy(), d50.copy(), xfer.copy()
            t_d95[i], t_d50[i] = float(so[i].d95[k]), float(so[i].d50[k])
            for e, v in new_x.items():
                t_x[e] = v
            if not _ok(problem, g, t_d95, t_d50, t_x, t_units):
                continue
            picks[i], dev[i], d95, d50, xfer, units = k, nd, t_d95, t_d50, t_x, t_units
            break
    if en.hosts and not evaluate(problem, g, en, picks).feasible:
        return first   # a move took host cores from servers no longer rented (_ok checks paths, inventory only)
    return picks


def _bill(en: Enumeration, dix: dict[str, int], i: int, k: int, units: dict[str, float]) -> float:
    """The part of the whole-device bill that changes when stage i moves: its own cost on a type without
    slices, plus every sliced type's devices (the rest is the same on both sides of a comparison)."""
    s = en.stages[i]
    own = 0.0 if en.sliced[int(s.device[k])] else float(s.cost[k])
    return own + sum(en.price[dix[d]] * whole(u) for d, u in units.items() if en.sliced[dix[d]])


def _ok(problem: PlacementProblem, g: StageGraph, d95: list[float], d50: list[float], xfer: list[float],
        units: dict[str, float]) -> bool:
    if any(d in problem.inventory and whole(n) > problem.inventory[d] for d, n in units.items()):
        return False
    for d, target in ((d95, problem.sla.p95_s), (d50, problem.sla.p50_s)):
        if target is not None and longest_path(g, d, xfer)[0] > target * (1 + REL_TOL):
            return False
    return True
