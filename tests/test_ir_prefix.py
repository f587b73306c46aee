"""The prefix-reuse pass (planned, not measured) and the dead-step pass, on the examples and small agents."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import _ir_agents as agents
import pytest
from xdsl.dialects.builtin import FloatAttr, ModuleOp

from plait.ir import IRVerifyError, verify_module
from plait.ir.dialects import op as O
from plait.ir.emit import emit
from plait.ir.passes.prefix_reuse import PREFIX_TOKENS
from plait.ir.pipeline import LOWERING, compile_graph, passes, run_passes
from plait.planner.catalog import load_catalog
from plait.planner.costmodel import estimate
from plait.planner.grouping import extract_stages
from plait.sdk import trace
from plait.sdk.estimate import CHARS_PER_TOKEN
from plait.sdk.loader import load_agent

ROOT = Path(__file__).resolve().parents[1]


def prefills(module: ModuleOp) -> list[tuple[str, float, float]]:
    """(model, prompt tokens, reused tokens) of every op.prefill, in program order."""
    out = []
    for op in module.walk():
        if isinstance(op, O.PrefillOp):
            reused = op.attributes.get(PREFIX_TOKENS)
            out.append((op.model.data, op.prompt_tokens.values[0],
                        reused.value.data if isinstance(reused, FloatAttr) else 0.0))
    return out


def test_react_prefill_per_iteration_reuses_the_transcript_and_costs_less() -> None:
    graph = trace(load_agent(str(ROOT / "examples/react.py:solve")))
    module = compile_graph(graph, "ops")
    in_loop, final = prefills(module)
    assert in_loop[0] == "llama-3.1-8b" and 60 < in_loop[2] < in_loop[1]   # 2 of 3 iterations share the transcript
    assert final[2] == 0.0
    stages = extract_stages(module, load_catalog(), "solve")
    loop_prefill = next(s for s in stages.stages if s.kind == "prefill" and s.visits > 1)
    assert loop_prefill.spec.cached_tokens == round(in_loop[2])
    assert "reused from the KV cache, planned" in loop_prefill.description
    fresh = loop_prefill.spec.model_copy(update={"cached_tokens": 0})
    alone, batched = (estimate(loop_prefill.spec, "h100-sxm", batch=b) for b in (1, 16))
    assert alone.seconds < estimate(fresh, "h100-sxm").seconds       # one prompt: weight reads dominate
    assert batched.seconds < 0.6 * estimate(fresh, "h100-sxm", batch=16).seconds   # compute-bound: 58 of 141


def test_without_the_pass_react_plans_every_prompt_token() -> None:
    graph = trace(load_agent(str(ROOT / "examples/react.py:solve")))
    module = emit(graph)
    run_passes(module, passes([p for p in LOWERING if p != "prefix-reuse"]))
    assert all(reused == 0.0 for *_, reused in prefills(module))


def test_a_maps_chunks_share_their_instruction() -> None:
    (one,) = prefills(compile_graph(trace(agents.chunked), "ops"))
    instruction = len(agents.INSTRUCTION) / CHARS_PER_TOKEN
    assert one[0] == "llama-3.2-1b" and one[2] == pytest.approx(instruction * 7 / 8, abs=0.01)  # 8 docs, first pays


def test_only_the_same_model_and_template_start_share() -> None:
    a, b, c, d = prefills(compile_graph(trace(agents.three_calls), "ops"))
    assert (a[2], b[2], c[2]) == (0.0, 0.0, 0.0)      # first; another model; another template
    assert d[2] == pytest.approx(len(agents.INSTRUCTION) / CHARS_PER_TOKEN, abs=0.01)


def test_prefix_tokens_must_stay_below_the_prompt() -> None:
    module = compile_graph(trace(agents.chunked), "ops")
    prefill = next(op for op in module.walk() if isinstance(op, O.PrefillOp))
    prefill.attributes[PREFIX_TOKENS] = FloatAttr(5000.0, 64)
    with pytest.raises(IRVerifyError, match=r"'op.prefill' attribute 'prefix_tokens' must be an f64 in \[0, "
                                            r"prompt_tokens mean 221.0\), got 5.000000e\+03 : f64"):
        verify_module(module)


def test_dead_steps_go_and_the_same_search_runs_once() -> None:
    module = compile_graph(trace(agents.wasteful), "ops")
    counts = Counter(op.name for op in module.walk())
    assert counts["op.decode"] == 1 and counts["op.prefill"] == 1           # the unread 70B call is gone
    assert counts["op.encode"] == 1 and counts["op.ann_search"] == 1        # one embedding, one search
    assert {m for m, *_ in prefills(module)} == {"llama-3.1-8b"}


def test_the_react_plan_shows_the_reused_prefix() -> None:
    from plait.planner.planning import plan_agent

    plan = plan_agent(trace(load_agent(str(ROOT / "examples/react.py:solve"))), source="react.py:solve",
                      sweep_points=0).plan
    (reusing,) = [s for s in plan.stages if "reused from the KV cache, planned" in s.description]
    assert reusing.stage == "prefill:llama-3.1-8b@react.py:115"
    assert any(a.startswith("prefix reuse at react.py:115: 83 of 141 prompt tokens") and "planned, not measured" in a
               for a in plan.assumptions)      # the report lists it
