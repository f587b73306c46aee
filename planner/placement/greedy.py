"""The baseline heuristic the MILP must beat: each stage alone takes its cheapest pair that fits a share
(never a pool option that serves other stages too: it cannot share pools nor run prefill and decode in one).

Stage i's share of the p95 SLA is L * f_i / P_i, with f_i its floor and P_i the longest floor path
through it, so the shares along any path sum to at most L: without transfers and inventory the
greedy answer is feasible, but it never trades time between stages, nor sees transfers.
"""

from __future__ import annotations

import numpy as np

from plait.planner.placement.evaluate import to_placement
from plait.planner.placement.floors import floor_bounds
from plait.planner.placement.graph import build_graph
from plait.planner.placement.options import enumerate_options
from plait.planner.placement.problem import Placement, PlacementProblem, SolveOptions


def greedy(problem: PlacementProblem, options: SolveOptions | None = None) -> Placement:
    """Per stage, independently, the cheapest pair within its SLA share; check `.feasible` on the result."""
    opts = options or SolveOptions()
    g = build_graph(problem)
    en = enumerate_options(problem, opts)
    L = problem.sla.p95_s if problem.sla.p95_s is not None else float("inf")
    f = [float(s.d95.min()) for s in en.stages]
    head, tail, _ = floor_bounds(g, f)
    alone = np.array([len(p.members) == 1 for p in problem.pools] + [True], dtype=bool)   # [-1]: no pool
    picks = []
    for i, s in enumerate(en.stages):
        through = head[i] + tail[i]
        share = L * f[i] / through if through > 0 else L
        own = alone[s.group]     # a pool option serving other stages too is not the stage's alone to take
        fits = np.flatnonzero((s.d95 <= share * (1 + 1e-9)) & own)
        if len(fits) == 0:
            fits = np.array([int(np.argmin(s.d95))])
        picks.append(int(fits[np.argmin(s.cost[fits])]))
    return to_placement(problem, g, en, picks)
