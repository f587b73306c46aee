"""The analytic p95 against simulation (issue 12, section 3): the four examples keep to the issue's band, never
more than 5 % below the simulated p95 nor more than 35 % above it (before: refine 41 % above, react 19 %).
Generated agents do not all keep to it yet (docs/placement.md, "Analytic and simulated")."""

from __future__ import annotations

import pytest

from plait.cli._agent import traced
from plait.planner.catalog import load_catalog
from plait.planner.planning import plan_agent
from plait.planner.simcheck import simulate_plan
from plait.sdk import AgentGraph

REQUESTS = 1500
CATALOG = load_catalog()


def views(graph: AgentGraph, requests: int = REQUESTS) -> tuple[tuple[float, float], tuple[float, float]]:
    """((analytic p95, simulated p95), (analytic p50, simulated p50)) of `graph`'s plan (seed 0)."""
    plan = plan_agent(graph, source=graph.name, catalog=CATALOG, sweep_points=0).plan
    e2e = simulate_plan(plan, graph, CATALOG, requests=requests).e2e
    return (plan.p95_s, e2e.p95), (plan.p50_s, e2e.p50)


@pytest.mark.parametrize("target", ["examples/rag.py:answer", "examples/react.py:solve",
                                    "examples/voice.py:assistant", "examples/refine.py:code_review"])
def test_examples_analytic_p95_within_the_band(target: str) -> None:
    (analytic, simulated), (p50, sim50) = views(traced(target), 2000)
    assert 0.95 * simulated <= analytic <= 1.35 * simulated, (analytic, simulated)
    # the p50 estimate (the median request's counts: react's arms at their binomial medians) within 10 %
    assert 0.9 * sim50 <= p50 <= 1.1 * sim50, (p50, sim50)
