"""The placement MILP, solved by HiGHS (scipy.optimize.milp), and `solve`, the planner's entry point.

Notation
    i, j        stages; e = (i, j) an edge of the stage DAG; D a device type
    k in K_i    the kept (candidate, replicas) pairs of stage i (options.py), with
                c_ik $/hour pro rata (replicas x price_per_hour), d_ik per-request latency (p95 clock:
                d95, p50 clock: d50), u_ik = replicas x tp x share the devices it occupies (fractional
                for slices), D_ik its device type
    p_D         $/hour of one whole device of type D (= price_per_hour / (tp x share), one per type)
    x_ik        1 when stage i runs pair k (binary)
    X_iD        sum of x_ik over k with D_ik = D (an expression, not a variable)
    N_D         whole devices of type D rented (integer)
    t_i         start of stage i on the p95 clock (u_i on the p50 clock), seconds
    tau_e       transfer time on e, seconds; T_e(D, D') its value when i is on D and j on D'
                (D = D': two pools of one type, over that type's link inside a node; 0 without one)
    s_eD        in [0, 1]: both ends of e on type D (co-located, no transfer)
    L95, L50    the SLA; I_D the inventory of type D

Objective
    minimize  sum_D p_D N_D                                      (the whole-device bill, $/hour)

Constraints
    (1) sum_k x_ik = 1                                            one pair per stage
    (2) t_j >= t_i + sum_k d_ik x_ik + tau_e    for every edge    precedence on each clock
        t_i + sum_k d_ik x_ik <= L              for every sink    end-to-end target
    (3) tau_e >= T_e - sum_D (T_e - T_e(D, D)) s_eD - T_e C_e,  s_eD <= X_iD,  s_eD <= X_jD
        (T_e the one cross-type time; T_e(D, D) the same-type link's, 0 without one) and, when
        links differ by pair, for each D:
        tau_e >= sum_D' T_e(D, D') X_jD' - M_eD (1 - X_iD) - M_eD C_e,  M_eD = max_D' T_e(D, D')
    (4) sum_ik u_ik x_ik [D_ik = D] <= N_D <= I_D                 devices: slices pack, inventory
        sum_k ceil(u_ik) x_ik [D_ik = D] <= N_D  for each stage i with a fractional u_ik on D
                                                                  (valid cuts: tighten the LP)
    (5) per-stage caps remove candidates before enumeration (options.py)
    (6) x_ik = x_jl  for the pairs k, l of one pool option serving stages i and j (taken together;
        C_e = the x of i's pool options that also serve j: then e moves nothing)
    (8) host cores: sum of u_ik over pairs on host type H <= the devices of the type D carrying it
        (N_D, or sum u_ik x_ik over D's pairs when D has no slices); host pairs cost nothing
    (7) link capacity (links with capacity_gb_s), per direction of each pair of device types (a, b):
        an edge whose rate r_e alone exceeds util x cap(a, b) gets X_ia + X_jb - C_e <= 1; where the edges that could use
        the link exceed it together, w_e >= X_ia + X_jb - 1 - C_e and sum_e r_e w_e <= util x cap(a, b)
    (9) with --max-device-types n only: sum_k x_ik [D_ik is D or a host type of D] <= y_D, sum_D y_D <= n
        (limit_device_types; the host CPUs of D's servers are no type of their own)
    (10) TTFT: t_i + sum_k one95_ik x_ik <= TTFT for each stage i ending in an LLM call's first token
        (one95_ik: one long execution's p95 sojourn), on the p95 clock: upstream stages count
A type without slices (every candidate share 1) has integral u_ik, so N_D = sum u_ik x_ik at the
optimum and p_D N_D = sum c_ik x_ik: N_D is substituted out, its pairs carry c_ik in the objective
and (4) is the old inventory row over n_ik = u_ik (only for limited types). Such a type needs no
single price either. Only sliced types get N_D, and their pairs cost 0 in the objective.
Bounds: t_i lies in [head_i, L - tail_i], from the latency floors (fastest pair per stage); a pair
whose floor path head_i + d_ik + tail_i - f_i exceeds L is fixed to 0.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from plait.planner.placement import highs
from plait.planner.placement.errors import (
    InfeasibleInventory,
    InfeasiblePlacement,
    InfeasibleSLA,
    SolverTimeLimit,
)
from plait.planner.placement.evaluate import fleet, to_placement
from plait.planner.placement.floors import check_floors, floor_bounds, ms_text
from plait.planner.placement.graph import StageGraph, build_graph, max_edge_times
from plait.planner.placement.options import UNIT_TOL, Enumeration, enumerate_options
from plait.planner.placement.problem import Placement, PlacementProblem, SolveOptions, Stats
from plait.planner.placement.rounding import round_lp

INF = float("inf")


@dataclass
class Model:
    """The MILP in scipy.optimize.milp form, plus where each stage's x columns start."""

    c: list[float] = field(default_factory=list)
    lb: list[float] = field(default_factory=list)
    ub: list[float] = field(default_factory=list)
    integ: list[int] = field(default_factory=list)
    ri: list[int] = field(default_factory=list)
    ci: list[int] = field(default_factory=list)
    vals: list[float] = field(default_factory=list)
    rlb: list[float] = field(default_factory=list)
    rub: list[float] = field(default_factory=list)
    x_off: list[int] = field(default_factory=list)
    n_col: dict[int, int] = field(default_factory=dict)  # sliced device type -> its N_D column

    def col(self, cost: float, lo: float, hi: float, integer: bool = False) -> int:
        self.c.append(cost)
        self.lb.append(lo)
        self.ub.append(hi)
        self.integ.append(1 if integer else 0)
        return len(self.c) - 1

    def row(self, cols: list[int], vals: list[float], lo: float, hi: float) -> None:
        r = len(self.rlb)
        self.ri.extend([r] * len(cols))
        self.ci.extend(cols)
        self.vals.extend(vals)
        self.rlb.append(lo)
        self.rub.append(hi)


def pool_columns(en: Enumeration, x_off: list[int]) -> dict[int, list[tuple[int, int]]]:
    """Pool option b -> [(stage, x column)] of its members, first member (the cost carrier) first."""
    out: dict[int, list[tuple[int, int]]] = {}
    for i, so in enumerate(en.stages):
        for k in np.flatnonzero(so.group >= 0).tolist():
            out.setdefault(int(so.group[k]), []).append((i, x_off[i] + k))
    return out


class OnType:
    """X_iD as one column: x_ik itself when one pair of stage i is on D, else y_iD = sum of them (a
    continuous column with its defining row, made on first use), so rows that name X_iD for many (i, D)
    stay short."""

    def __init__(self, m: Model, X: list[dict[int, list[int]]]):
        self.m, self.X = m, X
        self.y: dict[tuple[int, int], int] = {}

    def __call__(self, i: int, D: int) -> list[int]:
        cols = self.X[i][D]
        if len(cols) <= 1:
            return cols
        if (i, D) not in self.y:
            self.y[i, D] = y = self.m.col(0.0, 0.0, 1.0)
            self.m.row([y, *cols], [1.0] + [-1.0] * len(cols), 0.0, 0.0)
        return [self.y[i, D]]


def by_stage(together: dict[int, list[tuple[int, int]]], n: int) -> list[dict[int, int]]:
    """Per stage: pool option b -> its x column there."""
    out: list[dict[int, int]] = [{} for _ in range(n)]
    for b, cols in together.items():
        for a, c in cols:
            out[a][b] = c
    return out


def colocated(pools: list[dict[int, int]], i: int, j: int) -> list[int]:
    """x columns of stage i's pool options that also serve stage j: taking one puts i and j in one pool."""
    return [c for b, c in pools[i].items() if b in pools[j]]


def _transfers(m: Model, problem: PlacementProblem, g: StageGraph, en: Enumeration,
               on: OnType, together: list[dict[int, int]]) -> list[int | None]:
    """tau_e columns with rows (3): the transfer time of each edge, 0 when both ends share one pool."""
    X = on.X
    tau: list[int | None] = []
    for e, (i, j) in enumerate(g.edges):
        Ti, Tj = sorted(X[i]), sorted(X[j])
        T = {(a, b): g.transfer_s(problem, e, en.devices[a], en.devices[b]) for a in Ti for b in Tj}
        if not T or max(T.values()) <= 0:
            tau.append(None)
            continue
        C = colocated(together, i, j)
        cross = [v for (a, b), v in T.items() if a != b]
        top = max(cross) if cross else max(T.values())
        same = {a: T[a, a] for a in sorted(set(Ti) & set(Tj))}
        te = m.col(0.0, 0.0 if (C or same) else min(T.values()), INF)
        tau.append(te)
        if all(v == top for v in cross) and all(v <= top for v in same.values()):
            # tau_e >= top - sum_D (top - T(D, D)) s_eD - top C_e,  s_eD <= X_iD, s_eD <= X_jD
            s_cols = [(m.col(0.0, 0.0, 1.0), D) for D, v in same.items() if v < top]
            m.row([te, *(sc for sc, _ in s_cols), *C],
                  [1.0, *(top - same[D] for _, D in s_cols), *([top] * len(C))], top, INF)
            for sc, D in s_cols:
                m.row([sc, *X[i][D]], [1.0] + [-1.0] * len(X[i][D]), -INF, 0.0)
                m.row([sc, *X[j][D]], [1.0] + [-1.0] * len(X[j][D]), -INF, 0.0)
            continue
        for a in Ti:   # tau_e >= sum_D' T(a, D') X_jD' - M_a (1 - X_ia) - M_a C_e
            big = max(T[a, b] for b in Tj)
            if big <= 0:
                continue
            cols, vals = [te], [1.0]
            for b in Tj:
                if T[a, b] > 0:
                    cols += on(j, b)
                    vals += [-T[a, b]] * len(on(j, b))
            cols += on(i, a) + C
            vals += [-big] * len(on(i, a)) + [big] * len(C)
            m.row(cols, vals, -big, INF)
    return tau


def _link_rows(m: Model, problem: PlacementProblem, g: StageGraph, en: Enumeration,
               on: OnType, together: list[dict[int, int]], util: float) -> None:
    """(7) Link capacity, per direction of each pair of device types (a, b), a == b included: the bytes/s
    of the edges whose ends sit on a and b in different pools stay within util x bandwidth. An edge alone
    over it forbids that pair of types (unless one pool serves both ends); the sum gets a row with
    w_e >= X_ia + X_jb - 1 - C_e only where all the edges that could use the link together exceed it."""
    users: dict[tuple[int, int], list[tuple[int, list[int]]]] = {}
    X = on.X
    for e, (i, j) in enumerate(g.edges):
        if g.rate(problem, e) <= 0:
            continue
        C = colocated(together, i, j)
        for a in X[i]:
            for b in X[j]:
                if g.capacity(problem, en.devices[a], en.devices[b]) == INF:
                    continue
                pair = on(i, a) + on(j, b)
                if g.link_over(problem, e, en.devices[a], en.devices[b], util):
                    m.row(pair + C, [1.0] * len(pair) + [-1.0] * len(C), -INF, 1.0)
                else:
                    users.setdefault((a, b), []).append((e, C))
    for (a, b), edges in users.items():
        cap = util * g.capacity(problem, en.devices[a], en.devices[b])
        if sum(g.rate(problem, e) for e, _ in edges) <= cap:
            continue
        w_cols, rates = [], []
        for e, C in edges:
            i, j = g.edges[e]
            w = m.col(0.0, 0.0, INF)
            pair = on(i, a) + on(j, b)
            m.row([w, *pair, *C], [1.0] + [-1.0] * len(pair) + [1.0] * len(C), -1.0, INF)
            w_cols.append(w)
            rates.append(g.rate(problem, e))
        m.row(w_cols, rates, -INF, cap)


def build(problem: PlacementProblem, g: StageGraph, en: Enumeration,
          objective: Literal["cost", "makespan"] = "cost", max_utilization: float = 0.85) -> Model:
    """The MILP of the module docstring; `makespan` minimizes the p95 clock instead (for diagnostics)."""
    m = Model()
    so = en.stages
    S = len(so)
    # x_ik: pro-rata cost on types without slices, 0 on sliced types (their N_D carries the cost)
    sliced = np.asarray(en.sliced, dtype=bool)
    for i in range(S):
        m.x_off.append(len(m.c))
        cost = np.where(sliced[so[i].device], 0.0, so[i].cost) if objective == "cost" else np.zeros(len(so[i]))
        for ck in cost.tolist():
            m.col(ck, 0.0, 1.0, integer=True)
    xcols = [np.arange(m.x_off[i], m.x_off[i] + len(so[i])) for i in range(S)]
    X = [{int(D): xcols[i][so[i].device == D].tolist() for D in np.unique(so[i].device)} for i in range(S)]
    # (1) one pair per stage
    for i in range(S):
        m.row(xcols[i].tolist(), [1.0] * len(so[i]), 1.0, 1.0)
    # (6) a pool option's members are taken together
    together = pool_columns(en, m.x_off)
    for members in together.values():
        for _, c in members[1:]:
            m.row([members[0][1], c], [1.0, -1.0], 0.0, 0.0)
    # (3) transfer time per edge; (7) link capacity
    pools_at = by_stage(together, S)
    per_type = OnType(m, X)
    tau = _transfers(m, problem, g, en, per_type, pools_at)
    _link_rows(m, problem, g, en, per_type, pools_at, max_utilization)
    # (2) precedence and end-to-end target, one clock per latency target
    clocks: list[tuple[str, float | None]] = []
    ttft_rows = [i for i, st in enumerate(problem.stages) if st.first_token and problem.sla.ttft_s is not None]
    if objective == "makespan":
        clocks.append(("d95", None))
    else:
        if problem.sla.p95_s is not None or ttft_rows:
            clocks.append(("d95", problem.sla.p95_s))
        if problem.sla.p50_s is not None:
            clocks.append(("d50", problem.sla.p50_s))
    z = m.col(1.0, 0.0, INF) if objective == "makespan" else None
    for attr, L in clocks:
        d = [getattr(s, attr) for s in so]
        head, tail, f = floor_bounds(g, [float(a.min()) for a in d])
        if L is not None:
            for i in range(S):
                late = head[i] + d[i] + tail[i] - f[i] > L * (1 + 1e-9)
                for late_k in np.flatnonzero(late).tolist():
                    m.ub[m.x_off[i] + late_k] = 0.0
        t = [m.col(0.0, head[i], INF if L is None else max(head[i], L - tail[i])) for i in range(S)]
        for e, (i, j) in enumerate(g.edges):
            cols = [t[i], t[j], *xcols[i].tolist()]
            vals = [1.0, -1.0, *d[i].tolist()]
            if (tau_e := tau[e]) is not None:
                cols.append(tau_e)
                vals.append(1.0)
            m.row(cols, vals, -INF, 0.0)
        for i in range(S):
            if not g.succs[i]:
                cols, vals = [t[i], *xcols[i].tolist()], [1.0, *d[i].tolist()]
                if z is not None:
                    m.row([*cols, z], [*vals, -1.0], -INF, 0.0)
                else:
                    m.row(cols, vals, -INF, float(L if L is not None else INF))
        if attr == "d95" and objective != "makespan":   # (10) TTFT: t_i + sum_k one95_ik x_ik <= ttft
            for i in ttft_rows:
                m.row([t[i], *xcols[i].tolist()], [1.0, *so[i].one95.tolist()], -INF, float(problem.sla.ttft_s or INF))
    # (4) devices: N_D for sliced types (slices pack, inventory bounds N_D); limited types without slices
    need = [D for D, name in enumerate(en.devices) if en.sliced[D] or name in problem.inventory]
    cols_of: dict[int, list[int]] = {D: [] for D in need}
    vals_of: dict[int, list[float]] = {D: [] for D in need}
    cuts: dict[int, list[tuple[list[int], list[float]]]] = {D: [] for D in need}
    for i in range(S):
        dv = so[i].device
        order = np.argsort(dv, kind="stable")
        types, first = np.unique(dv[order], return_index=True)
        for D, a, b in zip(types.tolist(), first.tolist(), [*first[1:].tolist(), len(order)], strict=True):
            if D not in cols_of:
                continue
            on = order[a:b]
            cols, u = (m.x_off[i] + on).tolist(), so[i].units[on]
            cols_of[D] += cols
            vals_of[D] += u.tolist()
            if en.sliced[D] and (np.abs(u - np.round(u)) > UNIT_TOL).any():
                cuts[D].append((cols, np.maximum(np.ceil(u - UNIT_TOL), 0.0).tolist()))
    for D in need:
        cap = problem.inventory.get(en.devices[D])
        if not cols_of[D]:
            continue
        if en.sliced[D]:
            n = m.col(en.price[D] if objective == "cost" else 0.0, 0.0, INF if cap is None else float(cap),
                      integer=True)
            m.n_col[D] = n
            m.row([*cols_of[D], n], [*vals_of[D], -1.0], -INF, 0.0)
            for cols, up in cuts[D]:
                m.row([*cols, n], [*up, -1.0], -INF, 0.0)
        elif cap is not None:
            m.row(cols_of[D], vals_of[D], -INF, float(cap))
    _host_rows(m, en, S)
    return m


def _host_rows(m: Model, en: Enumeration, S: int) -> None:
    """(8) host cores: the units on a host type stay within the devices of the type carrying it,
    sum_ik u_ik x_ik [D_ik = H] <= N_D (sliced D) or sum_ik u_ik x_ik [D_ik = D] (D without slices)."""
    for H, D in en.hosts.items():
        cols: list[int] = []
        vals: list[float] = []
        for i in range(S):
            so = en.stages[i]
            for k in np.flatnonzero((so.device == H) | ((so.device == D) & (D not in m.n_col))).tolist():
                cols.append(m.x_off[i] + k)
                vals.append(float(so.units[k]) * (1.0 if int(so.device[k]) == H else -1.0))
        if not any(v > 0 for v in vals):
            continue
        if D in m.n_col:
            cols.append(m.n_col[D])
            vals.append(-1.0)
        m.row(cols, vals, -INF, 0.0)


def limit_device_types(m: Model, en: Enumeration, n: int) -> None:
    """(9) At most `n` device types in the fleet: a binary y_D per type, used when any stage picks a pair on D.

        sum_k x_ik [D_ik in {D} + hosts of D] <= y_D    for every stage i and type D (one pair per stage, so
                                                        this is x's type, a host type counted as its carrier)
        sum_D y_D <= n
    A host type (the host CPUs of D's servers, en.hosts) is no hardware of its own: its pairs run only
    within D's devices (row 8), so they use y_D, not a y of their own.
    Kept apart from `build` so the base MILP reads as its docstring; `solve` adds it when asked.
    """
    def kind(D: int) -> int:
        return en.hosts.get(D, D)

    types = sorted({kind(int(D)) for s in en.stages for D in np.unique(s.device).tolist()})
    y = {D: m.col(0.0, 0.0, 1.0, integer=True) for D in types}
    for i, s in enumerate(en.stages):
        kinds = np.array([kind(int(D)) for D in s.device], dtype=int)
        for D in np.unique(kinds).tolist():
            cols = (m.x_off[i] + np.flatnonzero(kinds == D)).tolist()
            m.row([*cols, y[int(D)]], [1.0] * len(cols) + [-1.0], -INF, 0.0)
    m.row(list(y.values()), [1.0] * len(y), -INF, float(n))


@dataclass
class Solution:
    status: str
    picks: list[int] | None
    objective: float
    gap: float
    seconds: float


def optimize(problem: PlacementProblem, g: StageGraph, en: Enumeration, m: Model,
             opts: SolveOptions) -> Solution:
    """HiGHS on the model; above `opts.lp_rounding_above` binaries, first an incumbent from the LP.

    The gap reported is (objective - best bound) / objective, the bound being the larger of the LP
    relaxation's value and HiGHS's MIP dual bound.
    """
    t0 = time.perf_counter()
    incumbent: list[int] | None = None
    bound = -INF
    if sum(m.integ) > opts.lp_rounding_above:
        lp = highs.run(m, False, opts.time_limit_s, opts.mip_rel_gap)
        if lp.status == "infeasible":
            return Solution("infeasible", None, INF, INF, time.perf_counter() - t0)
        if lp.x is not None:
            bound = lp.objective
            incumbent = round_lp(problem, g, en, m.x_off, lp.x)
    picks, obj, status = incumbent, INF, "time limit"
    start: tuple[list[int], list[float]] | None = None
    if incumbent is not None:
        obj, devices, _ = fleet(en, incumbent)
        cols = [m.x_off[i] + k for i, k in enumerate(incumbent)]
        ncols = [(n, float(devices.get(en.devices[D], 0))) for D, n in m.n_col.items()]
        start = (cols + [n for n, _ in ncols], [1.0] * len(cols) + [v for _, v in ncols])
    left = opts.time_limit_s - (time.perf_counter() - t0)
    if left > opts.min_mip_s and (incumbent is None or obj - bound > opts.mip_rel_gap * abs(obj)):
        mip = highs.run(m, True, left, opts.mip_rel_gap, start)
        if mip.status == "infeasible":
            return Solution("infeasible", None, INF, INF, time.perf_counter() - t0)
        bound = max(bound, mip.bound)
        if mip.x is not None and mip.objective <= obj:
            x = mip.x
            picks = [int(np.argmax(x[o:o + len(s)])) for o, s in zip(m.x_off, en.stages, strict=True)]
            obj, status = mip.objective, mip.status
        elif mip.status == "optimal":
            status = "optimal"
    elif incumbent is not None:
        status = "optimal" if obj - bound <= opts.mip_rel_gap * abs(obj) else "time limit (LP rounding)"
    gap = max(0.0, (obj - bound) / abs(obj)) if picks is not None and obj != 0 else 0.0
    if picks is None:
        status = "no solution within the time limit"
    return Solution(status, picks, obj, gap, time.perf_counter() - t0)


def solve(problem: PlacementProblem, options: SolveOptions | None = None) -> Placement:
    """The cheapest (candidate, replicas) per stage that meets the SLA within the inventory.

    Raises InfeasibleSLA / InfeasibleInventory naming the stage or path that breaks the targets,
    and PlacementInputError on a malformed problem.
    """
    opts = options or SolveOptions()
    if opts.max_device_types is not None:   # (9): a pair dominated on another type may be the one left, and a
        opts = opts.model_copy(update={"prune": False, "lp_rounding_above": 2**62})  # rounded LP may break (9)
    t0 = time.perf_counter()
    g = build_graph(problem)
    en = enumerate_options(problem, opts, max_edge_times(problem, g))
    if opts.check_floors:
        check_floors(problem, g, en)
    m = build(problem, g, en, max_utilization=opts.max_utilization)
    if opts.max_device_types is not None:
        limit_device_types(m, en, opts.max_device_types)
    t_build = time.perf_counter() - t0
    sol = optimize(problem, g, en, m, opts)
    stats = Stats(stages=len(problem.stages), candidates=sum(len(s.candidates) for s in problem.stages),
                  options_enumerated=en.enumerated, options_kept=en.kept, variables=len(m.c),
                  constraints=len(m.rlb), status=sol.status, objective=sol.objective, mip_gap=sol.gap,
                  build_s=t_build, solve_s=sol.seconds)
    if sol.picks is None and options is not None and options.max_device_types is not None \
            and sol.status == "infeasible":
        solve(problem, options.model_copy(update={"max_device_types": None}))   # raises if the limit is not why
        raise InfeasiblePlacement(
            f"no placement on at most {opts.max_device_types} device type(s) meets the targets within the "
            "inventory.\nTo fix: raise --max-device-types, relax the SLA, or plan without the limit to see which "
            "types the cheapest fleet needs.")
    if sol.picks is None:
        raise _explain(problem, g, en, opts, sol.status)
    out = to_placement(problem, g, en, sol.picks, stats)
    out.stats = stats.model_copy(update={"total_s": time.perf_counter() - t0})
    return out


def _heaviest(problem: PlacementProblem, g: StageGraph) -> str:
    """The edge that moves the most bytes per second, in words (for link-capacity errors)."""
    if not g.edges or not any(ln.capacity_gb_s for ln in [*problem.links, problem.default_link]):
        return ""
    e = max(range(len(g.edges)), key=lambda k: g.rate(problem, k))
    i, j = g.edges[e]
    return f" (heaviest edge: {g.names[i]} -> {g.names[j]}, {g.rate(problem, e) / 1e9:.3g} GB/s)"


def _explain(problem: PlacementProblem, g: StageGraph, en: Enumeration, opts: SolveOptions,
             status: str) -> InfeasiblePlacement:
    """Why the MILP found nothing, found by solving for the fastest placement within the inventory."""
    if status != "infeasible":
        return SolverTimeLimit(
            f"the placement solver stopped without a placement ({status}).\n"
            f"To fix: raise SolveOptions.time_limit_s (now {opts.time_limit_s:g} s).")
    fast = optimize(problem, g, en, build(problem, g, en, "makespan", opts.max_utilization), opts)
    if fast.picks is None:
        return InfeasibleInventory(
            "the inventory cannot hold one stable replica set per stage at the request rate "
            f"({problem.qps:g} qps), or no placement keeps the traffic on every link within its capacity"
            f"{_heaviest(problem, g)}.\nTo fix: add devices to the inventory, lower the rate, or give the "
            "links more capacity (links in the inventory file).")
    best = to_placement(problem, g, en, fast.picks)
    target = problem.sla.p95_s if problem.sla.p95_s is not None else INF
    path = " -> ".join(best.critical_path)
    if best.p95_bound_s > target * (1 + 1e-7):
        return InfeasibleSLA(
            f"no placement within the inventory meets the p95 SLA of {ms_text(target)} ms: the fastest "
            f"reaches {ms_text(best.p95_bound_s)} ms (over by {ms_text(best.p95_bound_s - target)} ms), "
            f"transfers between device types included.\n  critical path: {path}\n"
            "To fix: relax the SLA, add devices of the fast types to the inventory, or add faster candidates.")
    ttft = problem.sla.ttft_s
    if ttft is not None and (late := {n: t for n, t in best.ttft_s.items() if t > ttft * (1 + 1e-7)}):
        name, t = max(late.items(), key=lambda kv: kv[1])
        return InfeasibleSLA(
            f"no placement within the inventory meets the TTFT target of {ms_text(ttft)} ms: in the fastest, "
            f"the first token of {name} comes {ms_text(t)} ms after the request's arrival (upstream stages, "
            f"queueing and the prefill at p95).\n  critical path: {path}\n"
            "To fix: relax the TTFT target (it counts from the request's arrival), or add faster devices.")
    p50 = problem.sla.p50_s
    return InfeasibleSLA(
        f"no placement within the inventory meets the p95 and p50 SLA together (p50 target "
        f"{ms_text(p50 or INF)} ms; the fastest p95 placement has a p50 clock of {ms_text(best.p50_bound_s)} ms).\n"
        f"  critical path: {path}\nTo fix: relax the p50 target or add devices to the inventory.")
