"""Enumerate (candidate, replicas) pairs per stage with their queueing latency, and drop dominated pairs.

A pair o = (candidate, r) has pro-rata cost c = r * price, units u = r * tp * share (devices it occupies,
fractional for slices), and per-request latencies d95 = serial95 * (Wq_q + work_p95 * latency_s),
d50 = clock50 * (Wq_50 + latency_s), serial = visits / concurrency (a map's elements overlap), clock50 the
larger of serial and the median request's count (Stage.clock50: the p50 clock stays above the reported
estimate), serial95 and work_p95 the same for a request that runs long (p95 iterations, p95 tokens; see queueing.py). Replica counts run from the fewest that keep utilization <= max_utilization to `extra_replicas` more.

The fleet pays for whole devices: type D costs p_D * N_D with N_D >= the units placed on D. A type with
no slice (every candidate share 1) has integral units, so its bill is the sum of its pairs' c. A
"sliced" type (some candidate with share < 1) needs one price per device, p_D = price / (tp * share),
the same for all its candidates that pass the stage caps (else PlacementInputError; the others never
become pairs). Types without slices may price candidates freely (each pair's cost is what it adds).

Pruning is exact (the optimum over the kept pairs equals the optimum over all pairs): pair o' removes
o of the same stage only when swapping o for o' in any placement raises no cost, lengthens no path and
breaks no inventory limit.
  Same device type (margin m = 0): d95' <= d95, d50' <= d50 (only with a p50 target), and
    c' <= c on a type without slices, u' <= u on a sliced type (its bill depends on units only);
    also u' <= u when the type has an inventory limit.
  Other device type: d95' + m <= d95, d50' + m <= d50, with m = M_i the largest transfer time the
    stage's in-edge plus out-edge could add by switching type; the other type has no inventory limit;
    and hi' <= lo, where [lo, hi] bounds the change of the whole-device bill when the pair is removed
    from / added to any fleet: lo = p_D floor(u), hi = p_D ceil(u) on a sliced type (room left in a
    rented device is free, so pro-rata cost is not the marginal cost), lo = hi = c when u is integral
    (every pair of a type without slices: the old rule c' <= c). So a slice is only dropped for a pair
    of another type costing no more than the whole devices it would free.
Ties go to the earlier pair in (cost, d95, d50, index) order, so no two pairs remove each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from plait.planner.placement.errors import InfeasibleInventory, PlacementInputError
from plait.planner.placement.problem import PlacementProblem, PoolMember, SolveOptions, Stage
from plait.planner.placement.queueing import (
    FloatArray,
    IntArray,
    min_replicas,
    slowest,
    wait_quantiles_table,
)

Z95 = 1.6449   # a pool member's p95 reads as mean + Z95 sd (evaluate.moments)


@dataclass
class StageOptions:
    """The kept pairs of one stage, as parallel arrays (index k is the pair's number in the MILP)."""

    cand: IntArray
    replicas: IntArray
    device: IntArray  # index into Enumeration.devices
    cost: FloatArray
    d95: FloatArray
    d50: FloatArray
    units: FloatArray  # r * tp * share: devices occupied (fractional for slices)
    util: FloatArray
    lo: FloatArray  # least the whole-device bill falls when this pair leaves any fleet
    hi: FloatArray  # most the whole-device bill rises when this pair joins any fleet
    group: IntArray  # -1: the stage's own pair; b >= 0: member of problem.pools[b] (cand is then b too)
    one95: FloatArray  # one execution's sojourn at the stage quantile, a long request's (the TTFT bound's term)

    def __len__(self) -> int:
        return int(self.cand.shape[0])

    def take(self, keep: IntArray) -> StageOptions:
        return StageOptions(*(getattr(self, f)[keep] for f in self.__dataclass_fields__))


UNIT_TOL = 1e-6  # units within this of an integer count as that integer (float sums of slices)
PRICE_RTOL = 1e-6  # candidates of one sliced type must imply the same device price to this tolerance


def whole(units: float) -> int:
    """Whole devices holding `units` (slices packed, rounded up)."""
    return max(0, int(np.ceil(units - UNIT_TOL)))


@dataclass
class Enumeration:
    """Every stage's kept pairs, the device-type names, and the counts for the statistics.

    `sliced[D]`: type D has a candidate with share < 1 (its bill is price[D] x whole devices, and the
    MILP gives it a variable N_D); `price[D]`: $/hour of one device of a sliced type (0 for the others,
    whose bill is the sum of their pairs' costs).
    """

    devices: list[str]
    stages: list[StageOptions]
    candidates: int
    enumerated: int
    sliced: list[bool]
    price: list[float]
    hosts: dict[int, int] = field(default_factory=dict)   # host type -> the device type carrying it

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


def device_prices(problem: PlacementProblem, rows: list[tuple[int, int]], dev: IntArray, n_types: int,
                  price: FloatArray, tp: IntArray, share: FloatArray) -> tuple[list[bool], list[float]]:
    """(sliced, price of one device) per device type, from the candidates `rows` (stage, index) that pass
    the caps; PlacementInputError naming two candidates when a sliced type has two device prices."""
    sliced = np.zeros(n_types, dtype=bool)
    sliced[dev[share < 1]] = True
    out = np.zeros(n_types)
    if not sliced.any():
        return sliced.tolist(), out.tolist()
    on = np.flatnonzero(sliced[dev])
    implied = price[on] / (tp[on] * share[on])
    types, first = np.unique(dev[on], return_index=True)
    out[types] = implied[first]
    ref = out[dev[on]]
    bad = np.flatnonzero(np.abs(implied - ref) > PRICE_RTOL * np.maximum(np.abs(implied), np.abs(ref)))
    if len(bad):
        b = int(bad[0])
        a = int(first[np.searchsorted(types, dev[on[b]])])

        def who(r: int) -> str:
            si, k = rows[int(on[r])]
            c = problem.stages[si].candidates[k]
            return f"stage '{problem.stages[si].name}' candidate {k}" + (f" ({c.label})" if c.label else "")

        name = problem.stages[rows[int(on[b])][0]].candidates[rows[int(on[b])][1]].device
        raise PlacementInputError(
            f"device type '{name}' has two prices per whole device: {who(a)} implies ${implied[a]:.6g}/hour, "
            f"{who(b)} implies ${implied[b]:.6g}/hour (price_per_hour / (tp x share)).\n"
            "Slices of one type share whole devices, so its candidates must be priced pro rata from one "
            "device price.\nTo fix: price each candidate as device price x tp x share, or name the "
            "differently priced devices as different types.")
    return sliced.tolist(), out.tolist()


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


MAX_REPLICAS = 4096
"""Replicas of one configuration beyond which it is not considered (and the queueing table stays small)."""


def _check_replicas(problem: PlacementProblem, st_of: IntArray, r0: IntArray, too_many: np.ndarray) -> None:
    """Raise when every configuration of some stage needs more than MAX_REPLICAS replicas at this rate."""
    pooled = {m.stage for p in problem.pools for m in p.members}
    for si, st in enumerate(problem.stages):
        mine = st_of == si
        if mine.any() and too_many[mine].all() and st.name not in pooled:
            fewest = int(r0[mine].min())
            raise InfeasibleInventory(
                f"{st.what} needs at least {fewest:,} replicas to serve {problem.qps * st.visits:g} executions/s; "
                f"plait considers at most {MAX_REPLICAS:,} per stage.\n"
                "To fix: lower the request rate (--qps), or plan one shard of the traffic and multiply the fleet.")


def problem_limited(problem: PlacementProblem, dev_ix: dict[str, int]) -> np.ndarray:
    """Per device type: has an inventory limit."""
    out = np.zeros(len(dev_ix), dtype=bool)
    out[[i for d, i in dev_ix.items() if d in problem.inventory]] = True
    return out


def _pool_keep(problem: PlacementProblem, dev_ix: dict[str, int], margins: FloatArray, small: np.ndarray,
               big: np.ndarray, use50: bool) -> set[int]:
    """Pool options no other option serving the same stages dominates: no dearer, no slower for any member
    (by the member's transfer margin when on another type) and, on one type, with no more devices where the
    type is limited or sliced (`small`) and no fewer where it carries host workers (`big`). Across types, the
    dominating type has no limit and the dominated one carries no host workers."""
    ix = {s.name: i for i, s in enumerate(problem.stages)}
    groups: dict[tuple[str, ...], list[int]] = {}
    for b, p in enumerate(problem.pools):
        groups.setdefault(tuple(m.stage for m in p.members), []).append(b)
    keep: set[int] = set()
    for members, opts in groups.items():
        cost = np.array([problem.pools[b].price_per_hour for b in opts])
        dev = np.array([dev_ix[problem.pools[b].device] for b in opts])
        lat = np.array([[m.p95_s for m in problem.pools[b].members]
                        + ([m.p50_s for m in problem.pools[b].members] if use50 else []) for b in opts])
        margin = np.array([margins[ix[m]] for m in members] * (2 if use50 else 1))
        same = dev[:, None] == dev[None, :]
        slack = np.where(same[:, :, None], 0.0, margin[None, None, :])
        faster = (lat[:, None, :] + slack <= lat[None, :, :]).all(axis=2)
        order = np.lexsort((np.arange(len(opts)), lat.sum(axis=1), cost))
        rank = np.empty(len(opts), dtype=np.int64)
        rank[order] = np.arange(len(opts))
        units = np.array([problem.pools[b].replicas * problem.pools[b].tp for b in opts], dtype=float)
        dom = faster & (cost[:, None] <= cost[None, :]) & (rank[:, None] < rank[None, :])
        fewer, more = units[:, None] <= units[None, :], units[:, None] >= units[None, :]
        dom &= np.where(same, (~small[dev][None, :] | fewer) & (~big[dev][None, :] | more),
                        ~big[dev][None, :] & ~problem_limited(problem, dev_ix)[dev][:, None])
        hit = np.asarray(dom.any(axis=0), dtype=bool)
        keep |= {b for b, h in zip(opts, hit.tolist(), strict=True) if not h}
    return keep


def pool_pairs(problem: PlacementProblem, dev_ix: dict[str, int], kept: set[int] | None = None) -> list[StageOptions]:
    """Per stage, one pair per pool option serving it. The option's first member carries its cost and
    devices (the others 0), so the bill counts a shared pool once; the MILP links the members' x."""
    rows: list[list[tuple[float, ...]]] = [[] for _ in problem.stages]
    ix = {s.name: i for i, s in enumerate(problem.stages)}
    for b, p in enumerate(problem.pools):
        if kept is not None and b not in kept:
            continue
        for m_ix, m in enumerate(p.members):
            st = problem.stages[ix[m.stage]]
            serial = st.clock50
            serial95 = st.serial_p95 if st.serial_p95 is not None else st.visits / st.concurrency
            own = m_ix == 0
            cost = p.price_per_hour if own else 0.0
            rows[ix[m.stage]].append((b, p.replicas, dev_ix[p.device], cost, serial95 * (m.p95_s + lift(st, m)),
                                      serial * m.p50_s,
                                      p.replicas * p.tp if own else 0.0, m.utilization, cost, cost, b, m.p95_s))
    out = []
    for r in rows:
        cols = list(zip(*r, strict=True)) if r else [()] * 12
        ints = {0, 1, 2, 10}
        out.append(StageOptions(*(np.asarray(c, dtype=np.int64 if n in ints else float) for n, c in enumerate(cols))))
    return out


def lift(st: Stage, m: PoolMember) -> float:
    """How far the slowest of a map's elements on a pool lies above one element's mean (its own spread, not the
    part the elements share: queueing.slowest), so that the solver's sum of stage p95s keeps the join the
    estimate counts (evaluate.estimate_terms); 0 outside maps."""
    if st.concurrency <= 1.0:
        return 0.0
    own = max(((m.p95_s - m.p50_s) / Z95) ** 2 - m.shared_sd_s ** 2, 0.0)
    return slowest(st.concurrency)[0] * own ** 0.5


def _concat(a: StageOptions, b: StageOptions) -> StageOptions:
    return StageOptions(*(np.concatenate([getattr(a, f), getattr(b, f)]) for f in a.__dataclass_fields__))


def enumerate_options(problem: PlacementProblem, opts: SolveOptions,
                      max_edge_times: list[float] | None = None) -> Enumeration:
    """All (candidate, replicas) pairs of every stage, pruned unless `opts.prune` is off, then each stage's
    pool-option pairs (never pruned: taking one commits the other stages it serves)."""
    devices = sorted({c.device for s in problem.stages for c in s.candidates} | {p.device for p in problem.pools})
    dev_ix = {d: i for i, d in enumerate(devices)}
    ok = passes_caps(problem)
    rows = [(si, k) for si, ks in enumerate(ok) for k in ks]
    n = len(rows)
    st_of = np.array([r[0] for r in rows], dtype=np.int64)
    cand = np.array([r[1] for r in rows], dtype=np.int64)
    cands = [problem.stages[si].candidates[k] for si, k in rows]
    visits = np.array([problem.stages[si].visits for si, _ in rows], dtype=float)
    conc = np.array([problem.stages[si].concurrency for si, _ in rows], dtype=float)
    serial = visits / conc
    clock50 = np.array([problem.stages[si].clock50 for si, _ in rows], dtype=float)
    serial95 = np.array([s95 if (s95 := problem.stages[si].serial_p95) is not None else 0.0 for si, _ in rows],
                        dtype=float)
    serial95 = np.where(serial95 > 0, serial95, serial)
    stretch = np.array([problem.stages[si].work_p95 for si, _ in rows], dtype=float)
    cs2 = np.array([problem.stages[si].work_cs2 for si, _ in rows], dtype=float)
    lat = np.array([c.latency_s for c in cands], dtype=float)
    mu = np.array([c.throughput for c in cands], dtype=float)
    price = np.array([c.price_per_hour for c in cands], dtype=float)
    tp = np.array([c.tp for c in cands], dtype=np.int64)
    share = np.array([c.share for c in cands], dtype=float)
    dev = np.array([dev_ix[c.device] for c in cands], dtype=np.int64)
    sliced_l, price_l = device_prices(problem, rows, dev, len(devices), price, tp, share)
    hosts = {dev_ix[h]: dev_ix[d] for h, d in problem.hosts.items() if h in dev_ix and d in dev_ix}
    for h in hosts:   # host cores are paid with their servers: no bill, no whole devices of their own
        sliced_l[h], price_l[h] = False, 0.0
    sliced, dev_price = np.array(sliced_l, dtype=bool), np.array(price_l, dtype=float)
    lam = problem.qps * visits
    r0 = min_replicas(lam, mu, opts.max_utilization)
    too_many = r0 > MAX_REPLICAS
    if too_many.any():
        _check_replicas(problem, st_of, r0, too_many)
        r0 = np.minimum(r0, MAX_REPLICAS)   # those rows are dropped below; this bounds the queueing table
    extra = opts.extra_replicas
    r, (w95, w50) = wait_quantiles_table(lam, mu, r0, extra, (opts.stage_quantile, 0.5), cs2)
    steps = extra + 1
    use50 = problem.sla.p50_s is not None
    # host types have a capacity (their carriers' devices): pruned like limited types; a carrier's pair is
    # only dropped for one of its own type with at least its devices (fewer could leave host workers without
    # cores)
    limited = np.array([d in problem.inventory or d in problem.hosts for d in devices], dtype=bool)
    carrier = np.array([d in problem.hosts.values() for d in devices], dtype=bool)
    # one row per pair; a stage that is never visited needs one replica, no more
    live = np.ones((n, steps), dtype=bool)
    live[lam <= 0, 1:] = False
    live[too_many, :] = False
    enumerated = int(live.sum())
    if opts.prune:  # past the first r without waiting, more replicas only cost more
        zero = (w95 <= 0) & ((w50 <= 0) if use50 else True)
        live &= (np.cumsum(zero, axis=1) - zero) == 0
    flat = live.ravel()
    rep = lambda a: np.repeat(a, steps)[flat]  # noqa: E731
    P_stage = rep(st_of)
    P_dev = rep(dev)
    cost = (r * price[:, None]).ravel()[flat]
    units = (r * (tp * share)[:, None]).ravel()[flat]
    lo, hi = cost, cost
    if sliced.any():  # marginal whole-device cost on sliced types: [p floor(u), p ceil(u)]
        on = sliced[P_dev]
        p = dev_price[P_dev]
        lo = np.where(on, p * np.maximum(np.floor(units + UNIT_TOL), 0.0), cost)
        hi = np.where(on, p * np.maximum(np.ceil(units - UNIT_TOL), 0.0), cost)
    one95 = w95 + (stretch * lat)[:, None]   # one execution at the stage quantile: wait, then a long execution
    # a map's elements overlap only as far as there are replicas: r replicas run ceil(elements / r) in turn
    turns = (conc[:, None] / np.minimum(conc[:, None], r)) if (conc > 1).any() else np.ones_like(r, dtype=float)
    P = StageOptions(
        cand=rep(cand), replicas=r.ravel()[flat], device=P_dev, cost=cost,
        d95=(serial95[:, None] * turns * one95).ravel()[flat],
        d50=(clock50[:, None] * turns * (w50 + lat[:, None])).ravel()[flat],
        units=units,
        util=np.where(lam[:, None] > 0, lam[:, None] / (r * mu[:, None]), 0.0).ravel()[flat],
        lo=lo, hi=hi, group=np.full(int(flat.sum()), -1, dtype=np.int64),
        one95=one95.ravel()[flat],
    )
    S = len(problem.stages)
    margins = np.asarray(transfer_margin(problem, max_edge_times) if max_edge_times is not None
                         else [0.0] * S, dtype=float)
    if opts.prune and not use50 and not limited.any():
        keep = _sweep(P, P_stage, margins, len(devices), sliced)
        P, P_stage = P.take(keep), P_stage[keep]
    order = np.argsort(P_stage, kind="stable")
    bounds = np.searchsorted(P_stage[order], np.arange(S + 1))
    per_stage = [P.take(order[bounds[i]:bounds[i + 1]]) for i in range(S)]
    if opts.prune and (use50 or limited.any()):
        per_stage = [s.take(_pareto(s, limited, sliced, m, use50, carrier))
                     for s, m in zip(per_stage, margins, strict=True)]
    kept_pools = (_pool_keep(problem, dev_ix, margins, limited | sliced, carrier, use50) if opts.prune
                  else set(range(len(problem.pools))))
    pooled = pool_pairs(problem, dev_ix, kept_pools)
    per_stage = [_concat(s, p) for s, p in zip(per_stage, pooled, strict=True)]
    enumerated += sum(len(p) for p in pooled)
    return Enumeration(devices, per_stage, sum(len(k) for k in ok) + len(problem.pools), enumerated,
                       sliced_l, price_l, hosts)


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


def _sweep(P: StageOptions, stage: IntArray, margin: FloatArray, n_types: int, sliced: np.ndarray) -> IntArray:
    """Kept rows when only (cost, d95) matter: two sorted sweeps, within a device type, then across.

    Within a type the size is c (units on a sliced type). After the first sweep, the kept pairs of one
    type have strictly falling d95 as size rises. The second sweep orders a stage's pairs by (hi, d95,
    index); pair o may be removed by the pairs before it whose hi' <= lo_o, a prefix of that order
    (all pairs before it when every lo = hi, as without slices).
    """
    idx = np.arange(len(P))
    size = np.where(sliced[P.device], P.units, P.cost) if sliced.any() else P.cost
    o = np.lexsort((idx, P.d95, size, P.device, stage))
    keep1 = o[P.d95[o] < _prefix_min_before(P.d95[o], stage[o] * n_types + P.device[o])]
    o2 = keep1[np.lexsort((keep1, P.d95[keep1], P.hi[keep1], stage[keep1]))]
    st2, d2 = stage[o2], P.d95[o2]
    prev = _prefix_min_before(d2, st2)
    hi2, lo2 = P.hi[o2], P.lo[o2]
    if not np.array_equal(hi2, lo2):
        n = len(o2)
        _, inv = np.unique(np.concatenate([hi2, lo2]), return_inverse=True)
        R = int(inv.max()) + 1
        key_hi = st2 * R + inv[:n]  # nondecreasing: sorted by (stage, hi)
        end = np.minimum(np.searchsorted(key_hi, st2 * R + inv[n:], side="right"), np.arange(n))
        start = np.searchsorted(st2, st2, side="left")  # first row of the stage
        incl = np.minimum(prev, d2)  # min of d95 over the stage's rows up to and including this one
        prev = np.where(end > start, incl[np.maximum(end - 1, 0)], np.inf)
    return np.sort(o2[prev + margin[st2] > d2])


def _pareto(s: StageOptions, limited: np.ndarray, sliced: np.ndarray, margin: float, use50: bool,
            carrier: np.ndarray | None = None) -> IntArray:
    """Indices of the pairs no other pair dominates (the rule in the module docstring)."""
    n = len(s)
    if n <= 1:
        return np.arange(n, dtype=np.int64)
    size = np.where(sliced[s.device], s.units, s.cost)
    # 1. within one device type: a sort-and-sweep when only (size, d95) matter, pairwise otherwise
    order = np.lexsort((np.arange(n), s.d50 if use50 else np.zeros(n), s.d95, size, s.device))
    keep: list[int] = []
    dev_sorted = s.device[order]
    starts = np.flatnonzero(np.r_[True, dev_sorted[1:] != dev_sorted[:-1]])
    ends = np.r_[starts[1:], n]
    for a, b in zip(starts, ends, strict=True):
        g = order[a:b]
        if not use50 and not limited[s.device[g[0]]] and (carrier is None or not carrier[s.device[g[0]]]):
            d = s.d95[g]
            prev_min = np.minimum.accumulate(np.r_[np.inf, d[:-1]])
            keep.extend(g[d < prev_min].tolist())
        else:
            keep.extend(g[_pairwise_undominated(s, g, np.zeros(len(g)), limited, sliced, use50,
                                                carrier=carrier)].tolist())
    kept = np.array(sorted(keep), dtype=np.int64)
    # 2. across device types, on the survivors (few per stage)
    g = kept[np.lexsort((kept, s.d50[kept] if use50 else np.zeros(len(kept)), s.d95[kept], s.hi[kept]))]
    mask = _pairwise_undominated(s, g, np.full(len(g), margin), limited, sliced, use50, cross=True, carrier=carrier)
    return np.sort(g[mask])


def _pairwise_undominated(s: StageOptions, g: IntArray, margin: np.ndarray, limited: np.ndarray,
                          sliced: np.ndarray, use50: bool, cross: bool = False,
                          carrier: np.ndarray | None = None) -> np.ndarray:
    """Mask over g of pairs that no earlier pair of g dominates; g is sorted so that a pair can only
    dominate a later one (by size within a type, by hi across types; then d95, d50, index)."""
    d95, d50, u, dv = s.d95[g], s.d50[g], s.units[g], s.device[g]
    size = np.where(sliced[dv], u, s.cost[g])
    rank = np.arange(len(g))
    # dom[a, b]: pair a dominates pair b
    same = dv[:, None] == dv[None, :]
    m = np.where(same, 0.0, margin[None, :]) if cross else np.zeros((len(g), len(g)))
    cheaper = np.where(same, size[:, None] <= size[None, :], s.hi[g][:, None] <= s.lo[g][None, :])
    dom = cheaper & (d95[:, None] + m <= d95[None, :])
    if use50:
        dom &= d50[:, None] + m <= d50[None, :]
    lim_b = limited[dv][None, :]
    dom &= np.where(same, ~lim_b | (u[:, None] <= u[None, :]), ~limited[dv][:, None])
    if carrier is not None:   # a type carrying host workers: keep at least its devices, on it or by moving off it
        dom &= np.where(same, ~carrier[dv][None, :] | (u[:, None] >= u[None, :] - UNIT_TOL), ~carrier[dv][None, :])
    dom &= rank[:, None] < rank[None, :]
    return np.asarray(~dom.any(axis=0), dtype=bool)
