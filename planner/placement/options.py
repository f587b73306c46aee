"""Enumerate (candidate, replicas) pairs per stage with their queueing latency, and drop dominated pairs.

A pair o = (candidate, r) has cost c = r * price, devices n = r * tp, and per-request latencies
d95 = visits * (Wq_q + latency_s), d50 = visits * (Wq_50 + latency_s) (see queueing.py).
Replica counts run from the fewest that keep utilization <= max_utilization to `extra_replicas` more.

Pruning is exact (the optimum over the kept pairs equals the optimum over all pairs). Pair o' removes
o of the same stage when o' is no worse in every number the solver sees:
  c' <= c,  d95' + m <= d95,  d50' + m <= d50 (only with a p50 target),
  same device type: n' <= n when that type has an inventory limit, and m = 0;
  other device type: the other type has no inventory limit, and m = M_i, the largest transfer time
  the stage's in-edge plus out-edge could add by switching type (swapping o for o' then lengthens no
  path and raises no cost). Ties go to the lower (cost, d95, index).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from plait.planner.placement.problem import PlacementProblem, SolveOptions
from plait.planner.placement.queueing import FloatArray, IntArray, min_replicas, wait_quantiles_table


@dataclass
class StageOptions:
    """The kept pairs of one stage, as parallel arrays (index k is the pair's number in the MILP)."""

    cand: IntArray
    replicas: IntArray
    device: IntArray  # index into Enumeration.devices
    cost: FloatArray
    d95: FloatArray
    d50: FloatArray
    ndev: IntArray
    util: FloatArray

    def __len__(self) -> int:
        return int(self.cand.shape[0])

    def take(self, keep: IntArray) -> StageOptions:
        return StageOptions(*(getattr(self, f)[keep] for f in self.__dataclass_fields__))


@dataclass
class Enumeration:
    """Every stage's kept pairs, the device-type names, and the counts for the statistics."""

    devices: list[str]
    stages: list[StageOptions]
    candidates: int
    enumerated: int

    @property
    def kept(self) -> int:
        return sum(len(s) for s in self.stages)


def passes_caps(problem: PlacementProblem) -> list[list[int]]:
    """Per stage, the candidate indices that meet every per-stage latency cap."""
    out = []
    for st in problem.stages:
        if not st.caps:
            out.append(list(range(len(st.candidates))))
            continue
        out.append([k for k, c in enumerate(st.candidates)
                    if all(c.latency_s / cap.units <= cap.max_s * (1 + 1e-12) for cap in st.caps)])
    return out


def transfer_margin(problem: PlacementProblem, edge_times: list[float]) -> list[float]:
    """M_i: the largest in-edge plus the largest out-edge transfer time of each stage."""
    idx = {s.name: i for i, s in enumerate(problem.stages)}
    t_in = [0.0] * len(problem.stages)
    t_out = [0.0] * len(problem.stages)
    for e, t in zip(problem.edges, edge_times, strict=True):
        i, j = idx[e.src], idx[e.dst]
        t_out[i] = max(t_out[i], t)
        t_in[j] = max(t_in[j], t)
    return [a + b for a, b in zip(t_in, t_out, strict=True)]


def enumerate_options(problem: PlacementProblem, opts: SolveOptions,
                      max_edge_times: list[float] | None = None) -> Enumeration:
    """All (candidate, replicas) pairs of every stage, pruned unless `opts.prune` is off."""
    devices = sorted({c.device for s in problem.stages for c in s.candidates})
    dev_ix = {d: i for i, d in enumerate(devices)}
    ok = passes_caps(problem)
    rows = [(si, k) for si, ks in enumerate(ok) for k in ks]
    n = len(rows)
    st_of = np.array([r[0] for r in rows], dtype=np.int64)
    cand = np.array([r[1] for r in rows], dtype=np.int64)
    cands = [problem.stages[si].candidates[k] for si, k in rows]
    visits = np.array([problem.stages[si].visits for si, _ in rows], dtype=float)
    lat = np.array([c.latency_s for c in cands], dtype=float)
    mu = np.array([c.throughput for c in cands], dtype=float)
    price = np.array([c.price_per_hour for c in cands], dtype=float)
    tp = np.array([c.tp for c in cands], dtype=np.int64)
    dev = np.array([dev_ix[c.device] for c in cands], dtype=np.int64)
    lam = problem.qps * visits
    r0 = min_replicas(lam, mu, opts.max_utilization)
    extra = opts.extra_replicas
    r, (w95, w50) = wait_quantiles_table(lam, mu, r0, extra, (opts.stage_quantile, 0.5))
    steps = extra + 1
    use50 = problem.sla.p50_s is not None
    limited = np.array([d in problem.inventory for d in devices], dtype=bool)
    # one row per pair; a stage that is never visited needs one replica, no more
    live = np.ones((n, steps), dtype=bool)
    live[lam <= 0, 1:] = False
    enumerated = int(live.sum())
    if opts.prune:  # past the first r without waiting, more replicas only cost more
        zero = (w95 <= 0) & ((w50 <= 0) if use50 else True)
        live &= (np.cumsum(zero, axis=1) - zero) == 0
    flat = live.ravel()
    rep = lambda a: np.repeat(a, steps)[flat]  # noqa: E731
    P_stage = rep(st_of)
    P = StageOptions(
        cand=rep(cand), replicas=r.ravel()[flat], device=rep(dev),
        cost=(r * price[:, None]).ravel()[flat],
        d95=(visits[:, None] * (w95 + lat[:, None])).ravel()[flat],
        d50=(visits[:, None] * (w50 + lat[:, None])).ravel()[flat],
        ndev=(r * tp[:, None]).ravel()[flat],
        util=np.where(lam[:, None] > 0, lam[:, None] / (r * mu[:, None]), 0.0).ravel()[flat],
    )
    S = len(problem.stages)
    margins = np.asarray(transfer_margin(problem, max_edge_times) if max_edge_times is not None
                         else [0.0] * S, dtype=float)
    if opts.prune and not use50 and not limited.any():
        keep = _sweep(P, P_stage, margins, len(devices))
        P, P_stage = P.take(keep), P_stage[keep]
    order = np.argsort(P_stage, kind="stable")
    bounds = np.searchsorted(P_stage[order], np.arange(S + 1))
    per_stage = [P.take(order[bounds[i]:bounds[i + 1]]) for i in range(S)]
    if opts.prune and (use50 or limited.any()):
        per_stage = [s.take(_pareto(s, limited, m, use50)) for s, m in zip(per_stage, margins, strict=True)]
    return Enumeration(devices, per_stage, sum(len(k) for k in ok), enumerated)


def _prefix_min_before(v: FloatArray, grp: IntArray) -> FloatArray:
    """For rows sorted by group, the minimum of v over the earlier rows of the same group (inf if none)."""
    n = len(v)
    if n == 0:
        return v.copy()
    new = np.r_[True, grp[1:] != grp[:-1]]
    gid = np.cumsum(new) - 1
    starts = np.flatnonzero(new)
    pos = np.arange(n) - starts[gid]
    table = np.full((len(starts), int(pos.max()) + 2), np.inf)
    table[gid, pos + 1] = v
    return np.minimum.accumulate(table, axis=1)[gid, pos]


def _sweep(P: StageOptions, stage: IntArray, margin: FloatArray, n_types: int) -> IntArray:
    """Kept rows when only (cost, d95) matter: two sorted sweeps, within a device type, then across.

    After the first sweep, the kept pairs of one type have strictly falling d95 as cost rises, so an
    earlier pair (cost' <= cost) with d95' + M <= d95 in the second sweep is of another type.
    """
    idx = np.arange(len(P))
    o = np.lexsort((idx, P.d95, P.cost, P.device, stage))
    keep1 = o[P.d95[o] < _prefix_min_before(P.d95[o], stage[o] * n_types + P.device[o])]
    o2 = keep1[np.lexsort((keep1, P.d95[keep1], P.cost[keep1], stage[keep1]))]
    prev = _prefix_min_before(P.d95[o2], stage[o2])
    return np.sort(o2[prev + margin[stage[o2]] > P.d95[o2]])


def _pareto(s: StageOptions, limited: np.ndarray, margin: float, use50: bool) -> IntArray:
    """Indices of the pairs no other pair dominates (the rule in the module docstring)."""
    n = len(s)
    if n <= 1:
        return np.arange(n, dtype=np.int64)
    # 1. within one device type: a sort-and-sweep when only (cost, d95) matter, pairwise otherwise
    order = np.lexsort((np.arange(n), s.d95, s.cost, s.device))
    keep: list[int] = []
    dev_sorted = s.device[order]
    starts = np.flatnonzero(np.r_[True, dev_sorted[1:] != dev_sorted[:-1]])
    ends = np.r_[starts[1:], n]
    for a, b in zip(starts, ends, strict=True):
        g = order[a:b]
        if not use50 and not limited[s.device[g[0]]]:
            d = s.d95[g]
            prev_min = np.minimum.accumulate(np.r_[np.inf, d[:-1]])
            keep.extend(g[d < prev_min].tolist())
        else:
            keep.extend(g[_pairwise_undominated(s, g, np.zeros(len(g)), limited, use50)].tolist())
    kept = np.array(sorted(keep), dtype=np.int64)
    # 2. across device types, on the survivors (few per stage)
    g = kept[np.lexsort((kept, s.d95[kept], s.cost[kept]))]
    mask = _pairwise_undominated(s, g, np.full(len(g), margin), limited, use50, cross=True)
    return np.sort(g[mask])


def _pairwise_undominated(s: StageOptions, g: IntArray, margin: np.ndarray, limited: np.ndarray,
                          use50: bool, cross: bool = False) -> np.ndarray:
    """Mask over g (sorted by cost, d95, index) of pairs that no earlier-or-better pair dominates."""
    c, d95, d50, nd, dv = s.cost[g], s.d95[g], s.d50[g], s.ndev[g], s.device[g]
    rank = np.arange(len(g))
    # dom[a, b]: pair a dominates pair b
    same = dv[:, None] == dv[None, :]
    m = np.where(same, 0.0, margin[None, :]) if cross else np.zeros((len(g), len(g)))
    dom = (c[:, None] <= c[None, :]) & (d95[:, None] + m <= d95[None, :])
    if use50:
        dom &= d50[:, None] + m <= d50[None, :]
    lim_b = limited[dv][None, :]
    dom &= np.where(same, ~lim_b | (nd[:, None] <= nd[None, :]), ~limited[dv][:, None])
    better = (c[:, None] < c[None, :]) | (d95[:, None] < d95[None, :]) | (rank[:, None] < rank[None, :])
    if use50:
        better |= d50[:, None] < d50[None, :]
    dom &= better & (rank[:, None] != rank[None, :])
    return np.asarray(~dom.any(axis=0), dtype=bool)
