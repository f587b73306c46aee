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


def p95s(graph: AgentGraph, requests: int = REQUESTS) -> tuple[float, float]:
    """(analytic p95, simulated p95) of `graph`'s plan (seed 0)."""
    plan = plan_agent(graph, source=graph.name, catalog=CATALOG, sweep_points=0).plan
    return plan.p95_s, simulate_plan(plan, graph, CATALOG, requests=requests).e2e.p95


@pytest.mark.parametrize("target", ["examples/rag.py:answer", "examples/react.py:solve",
                                    "examples/voice.py:assistant", "examples/refine.py:code_review"])
def test_examples_analytic_p95_within_the_band(target: str) -> None:
    analytic, simulated = p95s(traced(target), 2000)
    assert 0.95 * simulated <= analytic <= 1.35 * simulated, (analytic, simulated)
