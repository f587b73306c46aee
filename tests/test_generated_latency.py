"""The analytic p95 against simulation on generated agents (issue 12, section 3): nested loops, branches and maps
of LLM calls and tools (tests/_latency_agents.py, seeded), planned at 1 to 190 requests/s (1 to 29 replicas of
a stage, utilization 0.2 to 0.8), replayed for 1,500 requests: the analytic p95 is never more than 5 % below the
simulated one nor more than 35 % above it (docs/placement.md, "Analytic and simulated")."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from _latency_agents import agent_source

from plait.planner.catalog import load_catalog
from plait.planner.planning import plan_agent
from plait.planner.simcheck import simulate_plan
from plait.sdk import trace
from plait.sdk.loader import load_agent

REQUESTS = 1500
CATALOG = load_catalog()

# (seed, requests/s): what the plan holds, measured (analytic / simulated p95, 1,500 requests,
# `.venv/bin/python bench/generated_latency.py`)
HOLD = [
    (0, 30),     # a loop of tools: 7 replicas (1.07)
    (0, 120),    # the same: 20 replicas (1.02)
    (0, 190),    # the same: 29 replicas, utilization 0.25 to 0.69 (1.03)
    (8, 120),    # one tool at utilization 0.8 on 6 replicas (1.25)
    (4, 6),      # one tool at utilization 0.24 (1.20)
    (2, 30),     # one LLM call at 30 requests/s (1.03)
    (7, 6),      # a branch of LLM calls (0.99)
    (3, 6),      # branches nested in a branch, a map (1.02)
    (16, 6),     # a loop with a region inside (1.30)
    (0, 6),      # a loop's three passes queue in turn at one tool replica at utilization 0.63 (1.01; 0.65 when
                 # their waits counted as independent Poisson ones: queueing.turn_moments)
    (17, 6),     # a loop around a branch and a map; 10 tool calls at once on 3 replicas at 0.8 (1.08; 0.83 before
                 # queueing.batch_moments)
    (6, 30),     # 8B decode at 30 requests/s (1.19; 1.38 while the simulator costed a chunk's compute alone)
    (10, 30),    # as (6, 30) (1.28)
    (9, 30),     # a loop around branches of LLM calls at 30 requests/s (1.30)
    (13, 30),    # a map of 4 chains of three 1B calls at 30 requests/s, prompts 0.58 of an engine's time: the
                 # chains share each engine's load of the moment (1.00; 0.78 when counted independent Poisson
                 # sequences at the mean load: serving._burst_steps, evaluate.slowest)
]
# a map of 5 whose elements map 6 chains of a 1B and an 8B call: 30 sequences join the engines at once (1.03; 0.61
# before serving._burst_steps). One case takes 40 to 100 s here: run with PLAIT_SLOW_TESTS=1 (the bench runs it)
SLOW = [pytest.param(12, 6, marks=pytest.mark.skipif(not os.environ.get("PLAIT_SLOW_TESTS"),
                                                      reason="40 to 100 s; PLAIT_SLOW_TESTS=1 runs it"))]


def p95s(tmp_path: Path, seed: int, qps: float) -> tuple[float, float]:
    """(analytic p95, simulated p95) of generated agent `seed` planned at `qps` (simulation seed 0)."""
    path = tmp_path / f"gen{seed}.py"
    path.write_text(agent_source(seed, qps))
    graph = trace(load_agent(f"{path}:main"))
    plan = plan_agent(graph, source=path.name, catalog=CATALOG, sweep_points=0).plan
    return plan.p95_s, simulate_plan(plan, graph, CATALOG, requests=REQUESTS).e2e.p95


@pytest.mark.parametrize(("seed", "qps"), [*HOLD, *SLOW])
def test_generated_agents_analytic_p95_within_the_band(tmp_path: Path, seed: int, qps: float) -> None:
    analytic, simulated = p95s(tmp_path, seed, qps)
    assert 0.95 * simulated <= analytic <= 1.35 * simulated, (analytic, simulated)


def test_the_cases_nest_loops_branches_and_maps() -> None:
    # the generator is not vacuous: the fixed cases together write each construct, nested
    sources = [agent_source(seed, qps) for seed, qps in HOLD]
    for construct in ("plait.loop(", "plait.branch(", "plait.map("):
        assert any(construct in s for s in sources), construct
    assert any("        def " in s for s in sources)   # a region inside a region
