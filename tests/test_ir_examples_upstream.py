"""Upstream MLIR parses and verifies the generic form of both stages of every example (and the test agents)."""

from __future__ import annotations

from pathlib import Path

import _ir_agents as agents
import pytest

from plait.ir import print_module
from plait.ir.pipeline import STAGES, compile_graph
from plait.ir.upstream import available, check_module, check_text
from plait.sdk import trace
from plait.sdk.loader import load_agent

pytestmark = pytest.mark.skipif(not available(), reason="upstream MLIR bindings (torch-mlir) not installed")
ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ["rag.py:answer", "react.py:solve", "voice.py:assistant", "refine.py:code_review"]


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("target", EXAMPLES)
def test_upstream_parses_and_verifies_each_stage_of_each_example(target: str, stage: str) -> None:
    module = compile_graph(trace(load_agent(str(ROOT / "examples" / target))), stage)
    upstream = check_module(module)
    assert ('"agent.llm_call"' in upstream) == (stage == "agent")
    assert ('"op.prefill"' in upstream) == (stage == "ops")
    assert f'loc("{target.split(":")[0]}":' in upstream


@pytest.mark.parametrize("name", ["mixed_loop", "mapped", "calls_twice", "twice"])
def test_upstream_accepts_boxed_slots_maps_branches_and_calls(name: str) -> None:
    graph = trace(getattr(agents, name))
    for stage in STAGES:
        check_module(compile_graph(graph, stage))


def test_generic_text_is_what_upstream_reads() -> None:
    module = compile_graph(trace(agents.mixed_loop), "ops")
    assert '"agent.box"' in print_module(module, generic=True) and '"scf.while"' in check_module(module)


@pytest.mark.parametrize("target", EXAMPLES)
def test_upstream_parses_and_verifies_the_placed_stage_of_each_example(target: str) -> None:
    from plait.planner.planning import plan_agent

    result = plan_agent(trace(load_agent(str(ROOT / "examples" / target))), source=target, sweep_points=0)
    upstream = check_text(result.placed_text)        # placed.mlir as `plait plan` writes it
    assert '"op.prefill"' in upstream and "pool = " in upstream
    assert ('"scf.while"' in upstream) == (target in ("react.py:solve", "refine.py:code_review"))
