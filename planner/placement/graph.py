"""The stage DAG as index arrays, transfer times on edges, and exact evaluation of a choice of pairs."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

import networkx as nx

from plait.planner.placement.errors import PlacementInputError
from plait.planner.placement.problem import PlacementProblem

INF = float("inf")


@dataclass
class StageGraph:
    """Stages by index, edges as (i, j), a topological order, and per-edge transfer parameters."""

    names: list[str]
    edges: list[tuple[int, int]]
    order: list[int]
    edge_visits: list[float]
    edge_bytes: list[float]
    preds: list[list[int]]  # edge indices into each stage
    succs: list[list[int]]  # edge indices out of each stage
    links: dict[tuple[str, str], tuple[float, float, float]] = field(default_factory=dict)

    def bandwidth(self, problem: PlacementProblem, a: str, b: str) -> tuple[float, float]:
        """(B/s, s latency) of the link between pools on types a and b; (inf, 0) when co-located for free."""
        return self._link(problem, a, b)[:2]

    def capacity(self, problem: PlacementProblem, a: str, b: str) -> float:
        """B/s all edges between pools on types a and b share (inf: no limit)."""
        return self._link(problem, a, b)[2]

    def _link(self, problem: PlacementProblem, a: str, b: str) -> tuple[float, float, float]:
        if (ab := self.links.get((a, b))) is None:
            ln = problem.link(a, b)
            ab = (INF, 0.0, INF) if ln is None else (ln.bandwidth_gb_s * 1e9, ln.latency_s,
                                                      INF if ln.capacity_gb_s is None else ln.capacity_gb_s * 1e9)
            self.links[a, b] = ab
        return ab

    def rate(self, problem: PlacementProblem, e: int) -> float:
        """Bytes per second edge e moves at the planned rate."""
        return problem.qps * self.edge_visits[e] * self.edge_bytes[e]

    def transfer_s(self, problem: PlacementProblem, e: int, a: str, b: str) -> float:
        """Seconds per request edge e adds when its ends are pools on device types a and b (not one pool).

        Per traversal: bytes / bandwidth plus the link's latency plus queueing behind the edge's own
        traffic (M/D/1 mean wait, rho = rate / bandwidth, held under 0.99: link_over says when the
        link cannot carry it at all).
        """
        bw, lat = self.bandwidth(problem, a, b)
        if bw == INF:
            return 0.0
        size = self.edge_bytes[e] / bw
        rho = min(self.rate(problem, e) / bw, 0.99)
        return self.edge_visits[e] * (size * (1.0 + rho / (2.0 * (1.0 - rho))) + lat)

    def link_over(self, problem: PlacementProblem, e: int, a: str, b: str, max_utilization: float) -> bool:
        """Edge e alone needs more than max_utilization of the capacity of the link between types a and b."""
        return self.rate(problem, e) > max_utilization * self.capacity(problem, a, b)


def build_graph(problem: PlacementProblem) -> StageGraph:
    """Index the stages; raise PlacementInputError on unknown stage names or a cycle."""
    names = [s.name for s in problem.stages]
    ix = {n: i for i, n in enumerate(names)}
    edges = []
    for e in problem.edges:
        for end in (e.src, e.dst):
            if end not in ix:
                near = difflib.get_close_matches(end, names, n=1)
                hint = f" Did you mean '{near[0]}'?" if near else ""
                raise PlacementInputError(
                    f"edge {e.src} -> {e.dst} names an unknown stage '{end}'.\n"
                    f"To fix: name one of the problem's stages.{hint}")
        edges.append((ix[e.src], ix[e.dst]))
    g = nx.DiGraph()
    g.add_nodes_from(range(len(names)))
    g.add_edges_from(edges)
    if not nx.is_directed_acyclic_graph(g):
        cyc = " -> ".join(names[u] for u, _ in nx.find_cycle(g))
        raise PlacementInputError(
            f"stages must form a DAG; found the cycle {cyc}.\n"
            "To fix: fold the loop into the stages' `visits` (expected iterations) instead of an edge back.")
    order = list(nx.lexicographical_topological_sort(g))
    visits = [s.visits for s in problem.stages]
    ev = [e.visits if e.visits is not None else min(visits[i], visits[j])
          for e, (i, j) in zip(problem.edges, edges, strict=True)]
    preds: list[list[int]] = [[] for _ in names]
    succs: list[list[int]] = [[] for _ in names]
    for k, (i, j) in enumerate(edges):
        succs[i].append(k)
        preds[j].append(k)
    return StageGraph(names, edges, order, ev, [e.bytes for e in problem.edges], preds, succs)


def max_edge_times(problem: PlacementProblem, g: StageGraph) -> list[float]:
    """Per edge, the largest transfer time any pair of its ends' device types could give."""
    pooled: dict[str, set[str]] = {}
    for p in problem.pools:
        for m in p.members:
            pooled.setdefault(m.stage, set()).add(p.device)
    types = [sorted({c.device for c in s.candidates} | pooled.get(s.name, set())) for s in problem.stages]
    out = []
    for k, (i, j) in enumerate(g.edges):
        if not problem.links:  # one link for every pair: any cross pair gives the same time
            cross = len(types[i]) > 1 or len(types[j]) > 1 or types[i] != types[j]
            out.append(g.transfer_s(problem, k, "\0a", "\0b") if cross else 0.0)
            continue
        out.append(max((g.transfer_s(problem, k, a, b) for a in types[i] for b in types[j]), default=0.0))
    return out


@dataclass
class Evaluation:
    """What a choice of one pair per stage gives, computed directly (no solver)."""

    cost: float
    p95: float          # the estimate (path_estimate) when asked for, else the bound; p95_bound: the bound
    p50: float
    start: list[float]
    critical: list[int]
    devices: dict[str, int]
    violations: list[str]
    ttft: dict[str, float] = field(default_factory=dict)   # per first_token stage: the TTFT bound
    p95_bound: float = 0.0
    p50_bound: float = 0.0   # the p50 clock (what the solver keeps within a p50 target); p50: the estimate

    @property
    def feasible(self) -> bool:
        return not self.violations


def longest_path(g: StageGraph, dur: list[float], xfer: list[float]) -> tuple[float, list[float], list[int]]:
    """Finish time of the latest sink, each stage's start time, and the critical path (stage indices)."""
    start = [0.0] * len(g.names)
    via: list[int | None] = [None] * len(g.names)
    for j in g.order:
        for k in g.preds[j]:
            i = g.edges[k][0]
            t = start[i] + dur[i] + xfer[k]
            if t > start[j]:
                start[j], via[j] = t, i
    end = max(range(len(g.names)), key=lambda i: (start[i] + dur[i], -i))
    path = [end]
    while (p := via[path[-1]]) is not None:
        path.append(p)
    return start[end] + dur[end], start, path[::-1]


def path_value(m: float, v: float, x: float, s: float = 0.0, w: float = 0.0, z: float = 1.6449) -> float:
    """A path's p95 estimate from its mean, variance, largest single-stage excess, shared spread s (a standard
    deviation its stages add in line) and lift w (the slowest of a map's elements over their mean, squared:
    path_estimate)."""
    return m + w ** 0.5 + max(z * (v + s * s) ** 0.5, x)


def path_ends(g: StageGraph, mean: list[float], var: list[float], excess: list[float], xfer: list[float],
              shared: list[float] | None = None, lift: list[float] | None = None
              ) -> list[tuple[float, float, float, float, float]]:
    """Per stage, (mean, variance, largest excess, shared spread, lift) of the path ending with it that
    path_estimate keeps."""
    add = shared if shared is not None else [0.0] * len(g.names)
    up = lift if lift is not None else [0.0] * len(g.names)
    ends = [(0.0, 0.0, 0.0, 0.0, 0.0)] * len(g.names)
    for j in g.order:
        best = (-1.0, (0.0, 0.0, 0.0, 0.0, 0.0))
        for k in g.preds[j]:
            m, v, x, s, w = ends[g.edges[k][0]]
            if (e := path_value(m + xfer[k], v, x, s, w)) > best[0]:
                best = (e, (m + xfer[k], v, x, s, w))
        m, v, x, s, w = best[1]
        ends[j] = (m + mean[j], v + var[j], max(x, excess[j]), s + add[j], w + up[j])
    return ends


def path_estimate(g: StageGraph, mean: list[float], var: list[float], excess: list[float],
                  xfer: list[float], shared: list[float] | None = None, lift: list[float] | None = None,
                  z: float = 1.6449) -> float:
    """End-to-end p95 estimate: along a path, each stage's executions on the p95 clock (loop counts at p95: the
    executions of one loop rise together) add their mean sojourn `mean` and their variance `var` (the stages
    being independent of each other; evaluate.p95_estimate sums a stage's own executions); the path's p95
    is its mean plus the larger of z standard deviations and the largest `excess` of one stage's own p95
    over its mean (a single skewed stage, an exponential wait, is not normal). A sum of stage p95s
    (longest_path of d95, the solver's bound) adds every stage's spread as if all ran long at once. The
    spread an LLM engine's load of the moment gives (`shared`, a standard deviation) is not independent from
    stage to stage: a burst of requests meets the request at every engine downstream too (the same requests
    travel with it), so the path adds those in line and takes them in quadrature with the rest. A map's
    elements on LLM pools share that part; the request waits for the largest of their own parts, whose mean
    lies above theirs (`lift`, squared, summed as variances are: the largest of n sums, not n largest). The
    path is chosen stage by stage, keeping the predecessor whose estimate is largest.
    """
    return max((path_value(*end, z=z) for end in path_ends(g, mean, var, excess, xfer, shared, lift)),
               default=0.0)
