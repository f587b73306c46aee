"""Brute force: every combination of (candidate, replicas) pairs, unpruned; the tests' ground truth."""

from __future__ import annotations

import itertools

from plait.planner.placement.evaluate import evaluate, to_placement
from plait.planner.placement.graph import build_graph
from plait.planner.placement.options import enumerate_options
from plait.planner.placement.problem import Placement, PlacementProblem, SolveOptions


def brute_force(problem: PlacementProblem, options: SolveOptions | None = None,
                limit: int = 2_000_000) -> Placement | None:
    """The cheapest feasible combination over all pairs (no pruning), or None when none is feasible."""
    opts = (options or SolveOptions()).model_copy(update={"prune": False})
    g = build_graph(problem)
    en = enumerate_options(problem, opts)
    sizes = [len(s) for s in en.stages]
    total = 1
    for n in sizes:
        total *= n
    if total > limit:
        raise ValueError(f"brute force over {total} combinations exceeds the limit of {limit}")
    best: list[int] | None = None
    best_cost = float("inf")
    costs = [s.cost.tolist() for s in en.stages]
    for combo in itertools.product(*(range(n) for n in sizes)):
        cost = sum(c[k] for c, k in zip(costs, combo, strict=True))
        if cost >= best_cost:
            continue
        if evaluate(problem, g, en, list(combo)).feasible:
            best, best_cost = list(combo), cost
    return None if best is None else to_placement(problem, g, en, best)
