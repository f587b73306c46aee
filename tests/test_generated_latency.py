"""The analytic p95 against simulation on generated agents (issue 12, section 3): nested loops, branches and maps
of LLM calls and tools (tests/_latency_agents.py, seeded), planned at 1 to 190 requests/s (1 to 29 replicas of
a stage, utilization 0.2 to 0.8), replayed for 1,500 requests: the analytic p95 is never more than 5 % below the
simulated one nor more than 35 % above it. Cases outside the band are marked xfail with their measured figures
and the cause (docs/placement.md, "Analytic and simulated")."""

from __future__ import annotations

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

# (seed, requests/s): what the plan holds, measured
HOLD = [
    (0, 30),     # a loop of tools: 7 replicas (1.03)
    (0, 120),    # the same: 20 replicas (1.03)
    (0, 190),    # the same: 29 replicas, utilization 0.25 to 0.69 (1.03)
    (8, 120),    # one tool at utilization 0.8 on 6 replicas (1.25)
    (4, 6),      # one tool at utilization 0.24 (1.19)
    (2, 30),     # one LLM call at 30 requests/s (1.15)
    (7, 6),      # a branch of LLM calls (1.04)
    (3, 6),      # branches nested in a branch, a map (1.04)
    (13, 30),    # a map of LLM calls on 4 replicas (1.07)
    (16, 6),     # a loop with a region inside (1.27)
]


def _out(seed: int, qps: float, why: str, run: bool = True) -> object:
    return pytest.param(seed, qps, marks=pytest.mark.xfail(strict=True, run=run, reason=why))


# measured with 1,500 requests; `run=False` where one case alone takes 30 s or more
OUT = [
    _out(0, 6, "analytic 439 ms against 673 ms simulated (35 % low): a loop's three iterations queue in turn at "
               "one tool replica at utilization 0.63; their waits are not independent (each iteration re-joins the "
               "queue behind the work that arrived during its last wait), path_estimate adds them as independent"),
    _out(12, 6, "analytic 5,675 ms against 7,345 simulated (23 % low): a map of 5 whose elements map 6 LLM chains "
                "each; 30 elements arrive at once on 2 replicas and wait for each other (map_tail counts the "
                "slowest of 30 independent elements: 0.71 before it)", run=False),
    _out(17, 6, "analytic 1,624 ms against 1,952 simulated (17 % low): a loop around a branch and a map, a tool "
                "at utilization 0.8 visited in turn (the loop's correlated waits)", run=False),
    _out(6, 30, "analytic 17,222 ms against 12,513 simulated (38 % high): the planner costs 8B decode at 30 "
                "requests/s at 85 ms per token, the simulator's engine steps at 62 (the running batch the planner "
                "sizes by Little's law from its own step time is larger than the simulated one)"),
    _out(10, 30, "analytic 13,735 ms against 8,998 simulated (53 % high): as (6, 30), LLM decode cost at 30 "
                 "requests/s above the simulated engine's"),
    _out(9, 30, "analytic 48,087 ms against 35,570 simulated (35.2 % high): a loop around branches of LLM calls "
                "at 30 requests/s, the decode cost under load as (6, 30)", run=False),
]


def p95s(tmp_path: Path, seed: int, qps: float) -> tuple[float, float]:
    """(analytic p95, simulated p95) of generated agent `seed` planned at `qps` (simulation seed 0)."""
    path = tmp_path / f"gen{seed}.py"
    path.write_text(agent_source(seed, qps))
    graph = trace(load_agent(f"{path}:main"))
    plan = plan_agent(graph, source=path.name, catalog=CATALOG, sweep_points=0).plan
    return plan.p95_s, simulate_plan(plan, graph, CATALOG, requests=REQUESTS).e2e.p95


@pytest.mark.parametrize(("seed", "qps"), [*HOLD, *OUT])
def test_generated_agents_analytic_p95_within_the_band(tmp_path: Path, seed: int, qps: float) -> None:
    analytic, simulated = p95s(tmp_path, seed, qps)
    assert 0.95 * simulated <= analytic <= 1.35 * simulated, (analytic, simulated)


def test_the_cases_nest_loops_branches_and_maps() -> None:
    # the generator is not vacuous: the fixed cases together write each construct, nested
    sources = [agent_source(seed, qps) for seed, qps in HOLD]
    for construct in ("plait.loop(", "plait.branch(", "plait.map("):
        assert any(construct in s for s in sources), construct
    assert any("        def " in s for s in sources)   # a region inside a region
