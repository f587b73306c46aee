"""The stage DAG as index arrays, transfer times on edges, and exact evaluation of a choice of pairs."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

import networkx as nx

from plait.planner.placement.errors import PlacementInputError
from plait.planner.placement.problem import PlacementProblem


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
    links: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)

    def transfer_s(self, problem: PlacementProblem, e: int, a: str, b: str) -> float:
        """Seconds per request edge e adds when its ends are on device types a and b."""
        if a == b:
            return 0.0
        if (ab := self.links.get((a, b))) is None:
            ln = problem.link(a, b)
            ab = self.links[a, b] = (ln.bandwidth_gb_s * 1e9, ln.latency_s)
        return self.edge_visits[e] * (self.edge_bytes[e] / ab[0] + ab[1])


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
    types = [sorted({c.device for c in s.candidates}) for s in problem.stages]
    out = []
    for k, (i, j) in enumerate(g.edges):
        if not problem.links:  # one link for every pair: any cross pair gives the same time
            cross = len(types[i]) > 1 or len(types[j]) > 1 or types[i] != types[j]
            out.append(g.transfer_s(problem, k, "a", "b") if cross else 0.0)
            continue
        out.append(max((g.transfer_s(problem, k, a, b) for a in types[i] for b in types[j]), default=0.0))
    return out


@dataclass
class Evaluation:
    """What a choice of one pair per stage gives, computed directly (no solver)."""

    cost: float
    p95: float
    p50: float
    start: list[float]
    critical: list[int]
    devices: dict[str, int]
    violations: list[str]

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
