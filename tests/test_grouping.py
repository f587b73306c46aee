"""Grouping a lowered module into stages: visits, overlap and order for loops, branches, maps and sub-agents.

Each agent here is small and timed by tools with declared latencies, so the planned p50 can be checked by
hand against what one request really waits for.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from plait.ir.pipeline import compile_graph
from plait.planner.catalog import load_catalog
from plait.planner.grouping import StageGraph, extract_stages
from plait.planner.placement import Placement, solve
from plait.planner.planning import Targets, build_problem
from plait.sdk import trace
from plait.sdk.loader import load_agent

TOOLS = '''
import plait

@plait.tool(latency_ms=10)
def work(x: str) -> str:
    return x

@plait.tool(latency_ms=1000)
def judge(x: str) -> bool:
    return True

@plait.tool(latency_ms=2000)
def final(x: str) -> str:
    return x

@plait.tool(latency_ms=500)
def slow_a(x: str) -> str:
    return x

@plait.tool(latency_ms=500)
def slow_b(x: str) -> str:
    return x

@plait.tool(latency_ms=1)
def pick(x: str) -> str:
    return "slow_a"

@plait.tool(latency_ms=500)
def per_doc(x: str) -> str:
    return x
'''


def planned(tmp_path: Path, body: str) -> tuple[StageGraph, Placement]:
    """Stages of `run` in a file of TOOLS + body, and its placement at a negligible rate."""
    path = tmp_path / "agent.py"
    path.write_text(TOOLS + textwrap.dedent(body))
    graph = trace(load_agent(f"{path}:run"))
    catalog = load_catalog()
    stages = extract_stages(compile_graph(graph, "ops"), catalog, "run")
    problem = build_problem(stages, Targets(qps=0.001), basis="cloud", catalog=catalog)
    return stages, solve(problem.placement)


def stages_of(tmp_path: Path, body: str) -> tuple[StageGraph, float]:
    """Stages of `run` and its planned p50 (seconds)."""
    stages, placement = planned(tmp_path, body)
    return stages, placement.p50_s


def by_tool(stages: StageGraph) -> dict[str, tuple[float, float]]:
    return {s.name.split(":")[1].split("@")[0]: (s.visits, s.concurrency) for s in stages.stages}


def test_what_follows_a_loop_waits_for_its_last_until_check(tmp_path: Path) -> None:
    stages, p50 = stages_of(tmp_path, '''
        @plait.agent(qps=1)
        def run(q: str) -> str:
            out = plait.loop(work, init=q, until=judge, max_iters=3, expected_iters=3)
            return final(out)
    ''')
    assert by_tool(stages)["work"] == (3.0, 1.0) and by_tool(stages)["judge"] == (3.0, 1.0)
    assert by_tool(stages)["final"] == (1.0, 1.0)
    # 3 x (10 ms work + 1000 ms judge), then 2000 ms: 5.03 s, not 3.03 s
    assert p50 == pytest.approx(5.03, rel=0.01)


def test_branch_arms_of_one_request_add_up(tmp_path: Path) -> None:
    stages, p50 = stages_of(tmp_path, '''
        @plait.agent(qps=1)
        def run(q: str) -> str:
            def step(t: str) -> plait.Sym:
                return plait.branch(pick(t), t, arms=[slow_a, slow_b], p=[0.5, 0.5])
            return plait.loop(step, init=q, until=judge, max_iters=4, expected_iters=4)
    ''')
    tools = by_tool(stages)
    assert tools["slow_a"] == (2.0, 1.0) and tools["slow_b"] == (2.0, 1.0) and tools["pick"] == (4.0, 1.0)
    # per iteration: pick 1 ms, one 500 ms arm, judge 1000 ms: 4 x 1501 ms
    assert p50 == pytest.approx(6.004, rel=0.01)


def test_map_elements_overlap(tmp_path: Path) -> None:
    stages, p50 = stages_of(tmp_path, '''
        @plait.agent(qps=1)
        def run(q: str) -> list[str]:
            docs = plait.retrieve(index="wiki", query=plait.embed(q, model="minilm-l6"), k=8, doc_tokens=100)
            return plait.map(per_doc, docs, expected_len=8)
    ''')
    assert by_tool(stages)["per_doc"] == (8.0, 8.0)     # eight calls of load, one of latency where replicas allow
    assert 4.0 <= p50 < 4.1     # at this rate one replica: the eight elements run in turn on it, as simulated


def test_a_sub_agent_called_twice_is_two_sets_of_stages(tmp_path: Path) -> None:
    stages, p50 = stages_of(tmp_path, '''
        @plait.agent
        def helper(x: str) -> str:
            return slow_a(x)

        @plait.agent(qps=1)
        def run(q: str) -> str:
            return helper(helper(q))
    ''')
    names = [s.name for s in stages.stages]
    assert len(names) == 2 and len(set(names)) == 2
    assert [(e.src, e.dst) for e in stages.edges] == [(names[0], names[1])]
    assert p50 == pytest.approx(1.0, rel=0.01)


def test_the_p95_takes_a_long_request(tmp_path: Path) -> None:
    stages, placement = planned(tmp_path, '''
        @plait.tool(latency_ms=plait.Dist.normal(300, 80))
        def lookup(x: str) -> str:
            return x

        @plait.agent(qps=1)
        def run(q: str) -> str:
            return plait.loop(lookup, init=q, until=judge, max_iters=6, expected_iters=plait.Dist.uniform(1, 5))
    ''')
    lookup = next(s for s in stages.stages if "lookup" in s.name)
    assert lookup.visits == pytest.approx(3.0)                        # load: expected iterations
    assert lookup.work_p95 == pytest.approx((300 + 1.6449 * 80) / 300, rel=1e-3)
    assert lookup.serial_p95 == pytest.approx(1 + 0.95 * 4, rel=1e-3)  # uniform(1, 5) at p95
    # p50: 3 x (300 + 1000) ms; p95: 4.8 x (431.6 + 1000) ms
    assert placement.p50_s == pytest.approx(3.9, rel=0.01)
    # the solver's bound: every iteration long at once
    assert placement.p95_bound_s == pytest.approx(4.8 * (0.3 + 1.6449 * 0.08 + 1.0), rel=0.01)
    # the estimate: 4.8 iterations at their means and their service spread, plus the loop's returning waits at
    # one queue (queueing.turn_moments: longer and correlated, small here, a second of judge between visits)
    independent = 4.8 * 1.3 + 1.6449 * (4.8 * 0.08 ** 2) ** 0.5
    assert independent < placement.p95_s < min(1.03 * independent, placement.p95_bound_s)
