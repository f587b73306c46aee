"""Exact evaluation of one pair per stage (whole-device cost, longest paths, inventory) and its Placement."""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

from plait.planner.placement.graph import (
    Evaluation,
    StageGraph,
    longest_path,
    path_ends,
    path_estimate,
    path_value,
)
from plait.planner.placement.options import UNIT_TOL, Z95, Enumeration, whole
from plait.planner.placement.problem import Choice, Placement, PlacementProblem, Stage, Stats, Transfer
from plait.planner.placement.queueing import batch_moments, slowest, turn_moments, wait_moments

REL_TOL = 1e-7


def fleet(en: Enumeration, picks: list[int]) -> tuple[float, dict[str, int], dict[str, float]]:
    """(whole-device bill, whole devices per type, units per type) of picking pair picks[i] for stage i.

    A type without slices costs the sum of its pairs' costs (its units are integral); a sliced type
    costs its device price times its units rounded up: slices of different stages share devices. Host
    cores on a sliced type's servers need that many of its devices too, rented for them if no pair is.
    """
    units: dict[str, float] = {}
    cost = 0.0
    for i, k in enumerate(picks):
        s = en.stages[i]
        D = int(s.device[k])
        units[en.devices[D]] = units.get(en.devices[D], 0.0) + float(s.units[k])
        if not en.sliced[D]:
            cost += float(s.cost[k])
    hosts = {en.devices[h] for h in en.hosts}
    devices = {d: whole(u) for d, u in units.items() if d not in hosts}
    for h, D in en.hosts.items():   # (8): a sliced carrier's N_D also covers the host cores its servers lend
        if en.sliced[D] and (used := units.get(en.devices[h], 0.0)) > 0:
            devices[en.devices[D]] = max(devices.get(en.devices[D], 0), whole(used))
    for D, d in enumerate(en.devices):
        if en.sliced[D] and d in devices:
            cost += en.price[D] * devices[d]
    return cost, devices, units


def edge_times(problem: PlacementProblem, g: StageGraph, en: Enumeration, picks: list[int]) -> list[float]:
    """Transfer seconds per edge for picks: 0 inside one pool option, else over the two types' link."""
    so = en.stages
    dev = [en.devices[int(so[i].device[k])] for i, k in enumerate(picks)]
    grp = [int(so[i].group[k]) for i, k in enumerate(picks)]
    return [0.0 if grp[i] >= 0 and grp[i] == grp[j] else g.transfer_s(problem, e, dev[i], dev[j])
            for e, (i, j) in enumerate(g.edges)]


def link_violations(problem: PlacementProblem, g: StageGraph, en: Enumeration, picks: list[int],
                    util: float) -> list[str]:
    """Pool options taken by some of their stages only, and links carrying more than util x bandwidth."""
    so = en.stages
    grp = [int(so[i].group[k]) for i, k in enumerate(picks)]
    ix = {s.name: i for i, s in enumerate(problem.stages)}
    bad = []
    for b in sorted({x for x in grp if x >= 0}):
        members = [ix[mb.stage] for mb in problem.pools[b].members]
        if any(grp[i] != b for i in members):
            bad.append(f"pool option '{problem.pools[b].label}' is taken by some of its stages only")
    dev = [en.devices[int(so[i].device[k])] for i, k in enumerate(picks)]
    load: dict[tuple[str, str], float] = {}
    for e, (i, j) in enumerate(g.edges):
        if not (grp[i] >= 0 and grp[i] == grp[j]) and g.capacity(problem, dev[i], dev[j]) < float("inf"):
            load[dev[i], dev[j]] = load.get((dev[i], dev[j]), 0.0) + g.rate(problem, e)
    for (src, dst), r in sorted(load.items()):
        cap = g.capacity(problem, src, dst)
        if r > util * cap * (1 + REL_TOL):
            bad.append(f"link {src} -> {dst} carries {r / 1e9:.3g} GB/s; {util:g} of its {cap / 1e9:.3g} GB/s allowed")
    return bad


def evaluate(problem: PlacementProblem, g: StageGraph, en: Enumeration, picks: list[int],
             util: float = 0.85, estimate: bool = False) -> Evaluation:
    """Cost, p95/p50 critical-path latency and violations of picking pair picks[i] for stage i."""
    so = en.stages
    d95 = [float(so[i].d95[k]) for i, k in enumerate(picks)]
    d50 = [float(so[i].d50[k]) for i, k in enumerate(picks)]
    xfer = edge_times(problem, g, en, picks)
    bound, start, crit = longest_path(g, d95, xfer)
    p50_bound, _, _ = longest_path(g, d50, xfer)
    p50 = p50_estimate(problem, g, d50, xfer) if estimate else p50_bound
    ttft = first_tokens(problem, en, picks, start)
    p95 = p95_estimate(problem, g, en, picks, d95, xfer, bound) if estimate else bound
    cost, devices, units = fleet(en, picks)
    bad = link_violations(problem, g, en, picks, util)
    for host, by in en.hosts.items():
        used, carrier = units.get(en.devices[host], 0.0), devices.get(en.devices[by], 0)
        if used > carrier + UNIT_TOL:
            bad.append(f"uses {used:.3g} {en.devices[by]} devices' worth of host cores; {carrier} are rented")
    if problem.sla.p95_s is not None and bound > problem.sla.p95_s * (1 + REL_TOL):
        bad.append(f"p95 bound {bound * 1e3:.3f} ms exceeds the SLA's {problem.sla.p95_s * 1e3:.3f} ms")
    if problem.sla.p50_s is not None and p50_bound > problem.sla.p50_s * (1 + REL_TOL):
        bad.append(f"p50 clock {p50_bound * 1e3:.3f} ms exceeds the SLA's {problem.sla.p50_s * 1e3:.3f} ms")
    if problem.sla.ttft_s is not None:
        bad += [f"TTFT of {name} {t * 1e3:.3f} ms exceeds the SLA's {problem.sla.ttft_s * 1e3:.3f} ms"
                for name, t in ttft.items() if t > problem.sla.ttft_s * (1 + REL_TOL)]
    for d, n in sorted(devices.items()):
        if d in problem.inventory and n > problem.inventory[d]:
            bad.append(f"uses {n} {d} devices; the inventory has {problem.inventory[d]}")
    return Evaluation(cost, p95, p50, start, crit, devices, bad, ttft, bound, p50_bound)


def p50_estimate(problem: PlacementProblem, g: StageGraph, d50: list[float], xfer: list[float]) -> float:
    """The median request's latency: the longest path of stage medians at the median request's counts
    (Stage.runs50), not the p50 clock's (Stage.clock50). A branch arm most requests skip is off the median
    request's path, and so is the transfer into or out of it: the median of a 70/30 mixture of a 7 ms and a
    10 s arm is about 7 ms, where the expected share put it at 3 s."""
    ratio = [st.runs50 / st.clock50 if st.clock50 > 0 else 0.0 for st in problem.stages]
    dur = [d * r for d, r in zip(d50, ratio, strict=True)]
    moved = [x * min(ratio[i], ratio[j]) for x, (i, j) in zip(xfer, g.edges, strict=True)]
    return longest_path(g, dur, moved)[0]


def p95_estimate(problem: PlacementProblem, g: StageGraph, en: Enumeration, picks: list[int], d95: list[float],
                 xfer: list[float], bound: float) -> float:
    """graph.path_estimate for picks, within `bound` (the sum of stage p95s the solver keeps under the SLA: a
    plan never claims more than it ensures)."""
    t = estimate_terms(problem, en, picks, d95)
    return min(bound, path_estimate(g, t.mean, t.var, t.excess, xfer, t.shared, t.lift))


@dataclass
class Terms:
    """Per stage, what it adds to the p95 estimate of a path through it: (mean, variance, excess) of its
    executions on the p95 clock, the spread it shares with the path's other engines (graph.path_estimate), and one
    execution's (mean, variance) sojourn."""

    mean: list[float]
    var: list[float]
    excess: list[float]
    shared: list[float]
    lift: list[float]
    one: list[tuple[float, float]]


def estimate_terms(problem: PlacementProblem, en: Enumeration, picks: list[int], d95: list[float]) -> Terms:
    """Terms of picks (see Terms)."""
    so = en.stages
    # executions in turn on the p95 clock, as the pair counts them (loops at p95, a map's turns on its replicas)
    n95 = [d / float(so[i].one95[k]) if so[i].one95[k] > 0 and so[i].group[k] < 0 else serial95(st)
           for (i, k), d, st in zip(enumerate(picks), d95, problem.stages, strict=True)]
    both = [moments(problem, en, i, k) for i, k in enumerate(picks)]
    mean = [m for m, _ in both]
    # n executions in turn: means and variances add, and in a loop so do the covariances of their waits
    total = turn_totals(problem, en, picks, n95, both)
    var1 = [v for _, v, _ in total]
    # how much of an execution's spread reaches the request's p95: less for an arm few requests take, more for a
    # map's elements (the request waits for the slowest; batch_moments counts that for a map at its own queue)
    # an LLM engine's step under the load of the moment is shared: by a map's elements (no slowest of n) and, in
    # line, by the request's other engines (serving._burst_steps)
    common = [shared_sd(problem, en, i, k) for i, k in enumerate(picks)]
    arm = [arm_tail(st) for st in problem.stages]
    own = [max(v - n * c * c, 0.0) for v, n, c in zip(var1, n95, common, strict=True)]
    # a map's elements on an LLM pool: the request waits for the slowest of n sums of a shared part and their own
    # (independent) spread, i.e. the shared part plus the largest of n own parts, whose mean is lifted by e_n sd
    # and whose sd is d_n sd (slowest); the lift adds along the map's stages as the sds of a sum do (path_value)
    top = [(0.0, 1.0) if batched(st, en, i, k) else slowest(st.concurrency)
           for (i, k), st in zip(enumerate(picks), problem.stages, strict=True)]
    var = [(a * d) ** 2 * v for a, (_, d), v in zip(arm, top, own, strict=True)]
    lift = [(a * e) ** 2 * v for a, (e, _), v in zip(arm, top, own, strict=True)]
    share = [a * (1.0 if batched(st, en, i, k) else map_tail(st))
             for (i, k), st, a in zip(enumerate(picks), problem.stages, arm, strict=True)]
    shared = [a * n * c for a, n, c in zip(arm, n95, common, strict=True)]
    # a single skewed stage: one execution's p95 over its mean (a pool member's: its own part as the slowest of a
    # map's elements spreads, above the lift, and its shared part), or a loop's correlated waits' (turn_moments)
    excess = [max(a * max(float(so[i].one95[k]) - m, x, 0.0) if so[i].group[k] < 0 else
                  b * Z95 * (d * d * max(v1 - c * c, 0.0) + c * c) ** 0.5, 0.0)
              for (i, k), a, b, m, (_, _, x), c, (_, v1), (_, d) in
              zip(enumerate(picks), share, arm, mean, total, common, both, top, strict=True)]
    return Terms([m for m, _, _ in total], var, excess, shared, lift, both)


def shared_sd(problem: PlacementProblem, en: Enumeration, i: int, k: int) -> float:
    """One execution's spread (sd) it shares with whatever runs in its pool at the time (PoolMember.shared_sd_s);
    0 for a stage's own pair."""
    if (b := int(en.stages[i].group[k])) < 0:
        return 0.0
    return next(x.shared_sd_s for x in problem.pools[b].members if x.stage == problem.stages[i].name)


def ttft_estimates(problem: PlacementProblem, g: StageGraph, en: Enumeration, picks: list[int], d95: list[float],
                   xfer: list[float], bounds: dict[str, float]) -> dict[str, float]:
    """Per `first_token` stage, the p95 time from the request's arrival to its first execution's first token, as
    p95_estimate reads a path: the stages before it at their p95 counts, except the stages of its own loop,
    which run one pass before its first execution (the bound counts them at all their p95 passes: refine's
    reviewer 24 s against 8 s simulated), then one execution of the call, its p95 excess its own. At most the
    bound (first_tokens, the MILP's row 10), and never above the path's p95 estimate: the first token of a call
    comes before the request's end."""
    t = estimate_terms(problem, en, picks, d95)
    both = t.one
    so = en.stages
    out = {}
    for i, st in enumerate(problem.stages):
        if not st.first_token:
            continue
        m, v, x = list(t.mean), list(t.var), list(t.excess)
        for j, other in enumerate(problem.stages):
            if st.loop is not None and other.loop == st.loop and j != i:
                m[j], v[j] = other.per_pass * both[j][0], other.per_pass * both[j][1]
        m[i], v[i] = both[i]
        x[i] = max(float(so[i].one95[picks[i]]) - both[i][0], 0.0)
        reach = path_ends(g, m, v, x, xfer, t.shared, t.lift)[i]
        out[st.name] = min(bounds[st.name], path_value(*reach))
    top = path_estimate(g, t.mean, t.var, t.excess, xfer, t.shared, t.lift)
    return {name: min(t, top) for name, t in out.items()}


def turn_totals(problem: PlacementProblem, en: Enumeration, picks: list[int], n95: list[float],
                both: list[tuple[float, float]]) -> list[tuple[float, float, float]]:
    """Per stage, (mean, variance, p95 excess) of one request's n95 executions in turn: n95 times one execution's
    (independent executions), except for a stage's own queue in a loop, whose executions come back to it
    (queueing.turn_moments: longer and correlated waits); not for pool members (an LLM engine admits a returning
    call into its running batch, no FIFO round). The gap between two executions is the rest of a pass of the
    loop: every stage of the loop at its mean sojourn and executions per pass, in series."""
    body: dict[str, float] = {}
    for st, (m, _) in zip(problem.stages, both, strict=True):
        if st.loop is not None:
            body[st.loop] = body.get(st.loop, 0.0) + m * st.per_pass
    out = []
    for (i, k), st, n, (m, v) in zip(enumerate(picks), problem.stages, n95, both, strict=True):
        so = en.stages[i]
        if batched(st, en, i, k):
            c = st.candidates[int(so.cand[k])]
            r = int(so.replicas[k])
            turns = st.concurrency / min(st.concurrency, r)
            bm, bv, bx = batch_moments(r, problem.qps * st.visits, c.throughput, c.latency_s, st.work_cs2,
                                       st.concurrency, turns, map_tail(st))
            runs = n / turns     # the map's runs in turn (n95 counts its turns on the replicas)
            out.append((runs * bm, runs * bv, bx))
            continue
        if st.loop is None or int(so.group[k]) >= 0 or st.per_pass <= 0:
            out.append((n * m, n * v, 0.0))
            continue
        c = st.candidates[int(so.cand[k])]
        out.append(turn_moments(int(so.replicas[k]), problem.qps * st.visits, c.throughput, c.latency_s,
                                st.work_cs2, st.visits / st.concurrency, n, body[st.loop] / st.per_pass - m))
    return out


def batched(st: Stage, en: Enumeration, i: int, k: int) -> bool:
    """A map's stage on its own queue (not a pool member): its elements arrive together (queueing.batch_moments)."""
    return st.concurrency > 1.0 and int(en.stages[i].group[k]) < 0


def arm_tail(st: Stage, q: float = 0.95) -> float:
    """How much of an execution's spread reaches the request's q quantile: all of it for a stage every request
    runs; for one only a share p of requests run (a branch arm, p = expected executions in turn < 1), the
    request's q quantile sees the stage's 1 - (1 - q) / p quantile, z of that over z of q (0 from p = 2 (1 - q))."""
    p = st.visits / st.concurrency
    if p >= 1.0:
        return 1.0
    inner = 1.0 - (1.0 - q) / max(p, 1e-12)
    return max(float(NormalDist().inv_cdf(inner)), 0.0) / NormalDist().inv_cdf(q) if inner > 0.5 else 0.0


def map_tail(st: Stage, q: float = 0.95) -> float:
    """How far a map's element spread reaches the request's q quantile: the request waits for the slowest of its c
    elements in parallel (Stage.concurrency), whose q quantile is each element's q^(1/c) quantile (iid): z of that
    over z of q (a map of 30 elements: 2.93 / 1.64). 1 for a stage that is not mapped."""
    c = st.concurrency
    if c <= 1.0:
        return 1.0
    return float(NormalDist().inv_cdf(q ** (1.0 / c))) / NormalDist().inv_cdf(q)


def moments(problem: PlacementProblem, en: Enumeration, i: int, k: int) -> tuple[float, float]:
    """(mean, variance) of one execution's sojourn on pair k of stage i: for a stage's own pair the M/G/c
    wait's moments (queueing.wait_moments) plus the service's (its work spread cs^2); for a pool member, its
    p50 as the mean and its p95 as mean + Z95 sd."""
    st, so = problem.stages[i], en.stages[i]
    if (b := int(so.group[k])) >= 0:
        m = next(x for x in problem.pools[b].members if x.stage == st.name)
        return m.p50_s, ((m.p95_s - m.p50_s) / Z95) ** 2
    c = st.candidates[int(so.cand[k])]
    wm, wv = wait_moments(int(so.replicas[k]), problem.qps * st.visits, c.throughput, st.work_cs2)
    return wm + c.latency_s, wv + st.work_cs2 * c.latency_s ** 2


def serial95(st: Stage) -> float:
    """Executions of stage `st` one request runs in turn when it runs long (its p95 clock's count)."""
    return st.serial_p95 if st.serial_p95 is not None else st.visits / st.concurrency


def first_tokens(problem: PlacementProblem, en: Enumeration, picks: list[int], start: list[float]) -> dict[str, float]:
    """Per `first_token` stage, the TTFT bound: its start on the p95 clock (upstream stages, transfers and their
    queueing at p95) plus one long execution's p95 sojourn (admission or queue wait, then the prefill)."""
    return {st.name: start[i] + float(en.stages[i].one95[k])
            for i, (st, k) in enumerate(zip(problem.stages, picks, strict=True)) if st.first_token}


def _choice(problem: PlacementProblem, en: Enumeration, i: int, k: int) -> Choice:
    st, so = problem.stages[i], en.stages[i]
    if (b := int(so.group[k])) >= 0:
        p = problem.pools[b]
        m = next(x for x in p.members if x.stage == st.name)
        how = Choice(stage=st.name, candidate=-1, pool_option=b, device=p.device, replicas=p.replicas,
                     devices_per_replica=p.tp, batch=p.batch, mode="graph", label=p.label, visits=st.visits,
                     service_s=m.service_s, latency_p50_s=0.0, latency_p95_s=0.0, utilization=0.0, cost_per_hour=0.0)
    else:
        c = st.candidates[int(so.cand[k])]
        how = Choice(stage=st.name, candidate=int(so.cand[k]), device=c.device, replicas=int(so.replicas[k]),
                     devices_per_replica=c.tp, share=c.share, batch=c.batch, mode=c.mode, label=c.label,
                     visits=st.visits, service_s=c.latency_s, latency_p50_s=0.0, latency_p95_s=0.0,
                     utilization=0.0, cost_per_hour=0.0)
    return how.model_copy(update={"latency_p50_s": float(so.d50[k]), "latency_p95_s": float(so.d95[k]),
                                  "utilization": float(so.util[k]), "cost_per_hour": float(so.cost[k])})


def to_placement(problem: PlacementProblem, g: StageGraph, en: Enumeration, picks: list[int],
                 stats: Stats | None = None) -> Placement:
    """The Placement (choices, transfers, critical path) for picks, evaluated exactly."""
    ev = evaluate(problem, g, en, picks, estimate=True)
    choices = [_choice(problem, en, i, k) for i, k in enumerate(picks)]
    xfer = edge_times(problem, g, en, picks)
    transfers = []
    for e, (i, j) in enumerate(g.edges):
        a, b = choices[i].device, choices[j].device
        if xfer[e] > 0:
            per_req = g.edge_visits[e] * g.edge_bytes[e]
            transfers.append(Transfer(
                src_stage=g.names[i], dst_stage=g.names[j], src_device=a, dst_device=b,
                bytes_per_request=per_req, bandwidth_gb_s=per_req * problem.qps / 1e9, seconds=xfer[e]))
    return Placement(
        choices=choices, cost_per_hour=ev.cost, p95_s=ev.p95, p95_bound_s=ev.p95_bound, p50_s=ev.p50,
        p50_bound_s=ev.p50_bound,
        critical_path=[g.names[i] for i in ev.critical],
        start_s={g.names[i]: ev.start[i] for i in range(len(g.names))},
        ttft_s=ttft_estimates(problem, g, en, picks, [float(en.stages[i].d95[k]) for i, k in enumerate(picks)], xfer,
                              ev.ttft), ttft_bound_s=ev.ttft,
        transfers=transfers, devices=dict(sorted(ev.devices.items())), feasible=ev.feasible,
        violations=ev.violations, stats=stats)
