"""Issue 8: every call of a sub-agent is planned with its own figures and model, not the first call's."""

from __future__ import annotations

import _ir_agents as agents
import pytest

from plait.planner.planning import PlanResult, plan_agent
from plait.sdk import trace


@pytest.fixture(scope="module")
def short_and_long() -> PlanResult:
    return plan_agent(trace(agents.short_and_long), source="_ir_agents.py:short_and_long", sweep_points=0)


def prefills(result: PlanResult) -> list[str]:
    return sorted(s.description for s in result.plan.stages if s.stage.startswith("prefill:"))


def test_two_calls_with_different_prompt_sizes_are_planned_at_both_sizes(short_and_long: PlanResult) -> None:
    summaries = [d for d in prefills(short_and_long) if d.startswith("prefill of llama-3.1-8b (") and "64 " not in d]
    sizes = sorted(int(d.split("(")[1].split()[0]) for d in summaries)
    assert len(sizes) == 2 and sizes[0] < 100 and sizes[1] > 3500, prefills(short_and_long)


def test_agents_from_one_factory_are_planned_with_both_models() -> None:
    result = plan_agent(trace(agents.small_then_large), source="_ir_agents.py:small_then_large", sweep_points=0)
    models = {s.description.split(" of ")[1].split(" (")[0] for s in result.plan.stages if " of " in s.description}
    assert models == {"llama-3.2-1b", "llama-3.1-70b"}
