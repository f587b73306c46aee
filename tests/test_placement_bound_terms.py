"""The solver's p95 bound counts what the estimate counts (issue 12, planner 5): a map's join on an LLM pool waits for
the slowest of its elements (queueing.slowest), so a pool option whose own spread is wide may meet the SLA as a sum
of per-stage p95s and still miss it once the slowest of 8 elements counts. The bound lifts a mapped member's p95 by
that (options.lift), so the solver picks the option whose estimate meets the SLA and never reports less than it
estimates."""

from __future__ import annotations

import pytest

from plait.planner.placement import SLA, PlacementProblem, PoolMember, PoolOption, Stage, solve
from plait.planner.placement.evaluate import estimate_terms
from plait.planner.placement.graph import build_graph, path_estimate
from plait.planner.placement.milp import SolveOptions
from plait.planner.placement.options import enumerate_options
from plait.planner.placement.queueing import slowest


def _problem(p95_target: float) -> PlacementProblem:
    """One LLM call mapped over 8 elements, two pools: a cheap one whose elements spread widely (p50 1.0 s,
    p95 2.0 s) and a dearer steady one (p50 1.0 s, p95 1.2 s)."""
    stage = Stage(name="decode", visits=8.0, concurrency=8.0)
    wide = PoolOption(label="wide", device="gpu-a", replicas=1, price_per_hour=1.0,
                      members=[PoolMember(stage="decode", p50_s=1.0, p95_s=2.0)])
    steady = PoolOption(label="steady", device="gpu-b", replicas=1, price_per_hour=3.0,
                        members=[PoolMember(stage="decode", p50_s=1.0, p95_s=1.2)])
    return PlacementProblem(stages=[stage], sla=SLA(p95_s=p95_target), qps=1.0, pools=[wide, steady])


def _uncapped(problem: PlacementProblem, label: str) -> float:
    """The p95 estimate of taking pool `label`, not capped by the bound."""
    g = build_graph(problem)
    en = enumerate_options(problem, SolveOptions())
    k = next(k for k, b in enumerate(en.stages[0].group) if problem.pools[int(b)].label == label)
    t = estimate_terms(problem, en, [k], [float(en.stages[0].d95[k])])
    return path_estimate(g, t.mean, t.var, t.excess, [], t.shared, t.lift)


def test_the_slowest_of_n_normals() -> None:
    # the known moments of the largest of n standard normals (order statistics tables)
    assert slowest(1.0) == (0.0, 1.0)
    assert slowest(2.0) == pytest.approx((1 / 3.14159265 ** 0.5, 0.8256), abs=1e-3)
    assert slowest(5.0) == pytest.approx((1.1630, 0.6690), abs=1e-3)


def test_the_bound_keeps_a_maps_slowest_element() -> None:
    problem = _problem(2.3)
    # the wide pool's sum of stage p95s (2.0 s) is within 2.3 s, but its slowest of 8 elements is not
    assert _uncapped(problem, "wide") > 2.3
    assert _uncapped(problem, "steady") <= 2.3
    placement = solve(problem)
    assert placement.choices[0].label == "steady"
    assert placement.p95_s <= 2.3
    # the bound the solver kept is no lower than the estimate it reports
    assert placement.p95_bound_s >= _uncapped(problem, "steady") - 1e-9


def test_a_loose_target_still_takes_the_cheap_pool() -> None:
    placement = solve(_problem(10.0))
    assert placement.choices[0].label == "wide"
    assert placement.p95_s == pytest.approx(_uncapped(_problem(10.0), "wide"))
