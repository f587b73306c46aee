"""Emission: each example's AgentGraph becomes a verified `agent` module with locations and figures."""

from __future__ import annotations

from pathlib import Path

import _ir_agents as agents
import pytest
from xdsl.dialects.builtin import ModuleOp
from xdsl.dialects.func import FuncOp
from xdsl.ir import Operation

from plait.ir import print_module, user_loc, verify_module
from plait.ir.dialects import agent as A
from plait.ir.emit import emit, fill_template
from plait.sdk import trace
from plait.sdk.loader import load_agent

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = {"rag.py:answer": ["answer"], "react.py:solve": ["solve", "step", "search", "calculator", "finish"],
            "voice.py:assistant": ["assistant"], "refine.py:code_review": ["code_review", "revise", "coder", "reviewer"]}


def example(target: str) -> ModuleOp:
    module = emit(trace(load_agent(str(ROOT / "examples" / target))))
    verify_module(module)
    return module


def ops(module: ModuleOp, kind: type[Operation]) -> list[Operation]:
    return [op for op in module.walk() if isinstance(op, kind)]


@pytest.mark.parametrize("target", EXAMPLES)
def test_each_example_emits_one_function_per_agent_and_body(target: str) -> None:
    module = example(target)
    funcs = [op for op in module.ops if isinstance(op, FuncOp)]
    assert [f.sym_name.data for f in funcs] == EXAMPLES[target]
    assert funcs[0].sym_visibility is None and all(f.sym_visibility is not None for f in funcs[1:])
    assert ops(module, A.LLMCallOp)
    file = target.split(":")[0]
    assert all((user_loc(op) or "").startswith(f"{file}:") for op in module.walk()
               if op.name.startswith("agent.") and op.name not in ("agent.box",))


def test_rag_keeps_figures_lines_and_boxes_the_mixed_prompt() -> None:
    module = example("rag.py:answer")
    (llm,) = ops(module, A.LLMCallOp)
    assert isinstance(llm, A.LLMCallOp)
    assert user_loc(llm) == "rag.py:20" and llm.model.data == "llama-3.1-8b"
    assert llm.output_tokens.value.data == 160.0 and 225 < llm.output_tokens_p95.value.data < 226
    (retrieve,) = ops(module, A.RetrieveOp)
    assert 'k = 8 : i64, doc_tokens = 100 : i64, index_docs = 1000000 : i64, dim = 384' in str(retrieve)
    (prompt,) = ops(module, A.PromptOp)
    assert isinstance(prompt, A.PromptOp)
    assert [type(v.owner) for v in prompt.args] == [A.BoxOp, A.BoxOp]  # text and docs: one type upstream
    assert "Passages:\n{1}\n\nQuestion: {0}" in prompt.template.data


def test_react_branch_selector_becomes_an_arm_index() -> None:
    module = example("react.py:solve")
    (select,) = ops(module, A.SelectArmOp)
    (branch,) = ops(module, A.BranchOp)
    assert isinstance(select, A.SelectArmOp) and isinstance(branch, A.BranchOp)
    assert [a.data for a in select.arms.data] == ["search", "calculator", "finish"]
    assert branch.selector.owner is select
    assert [a.root_reference.data for a in branch.arms.data] == ["search", "calculator", "finish"]
    (loop,) = ops(module, A.LoopOp)
    assert 'expected_iters = 3.000000e+00 : f64, expected_iters_p95 = 3.900000e+00' in str(loop)


def test_voice_speech_figures() -> None:
    module = example("voice.py:assistant")
    (stt,) = ops(module, A.STTOp)
    (tts,) = ops(module, A.TTSOp)
    assert "prompt_tokens = 1.500000e+03" in str(stt)       # one 30 s whisper window of encoder frames
    assert 'vocoder = "parler-tts-mini"' in str(tts) and "output_tokens = 1576" in str(tts)


def test_captures_of_mixed_types_arrive_boxed_and_are_unboxed_at_entry() -> None:
    module = emit(trace(agents.mixed_loop))
    verify_module(module)
    (loop,) = ops(module, A.LoopOp)
    assert isinstance(loop, A.LoopOp)
    assert [type(v.owner) for v in loop.invariants] == [A.BoxOp, A.BoxOp]
    body = next(f for f in module.ops if isinstance(f, FuncOp) and f.sym_name.data == "step")
    unboxed = [op.results[0].type for op in body.body.block.ops if isinstance(op, A.UnboxOp)]
    assert unboxed == [A.TextType(), A.DocsType()]


def test_a_sub_agent_called_twice_is_emitted_once() -> None:
    module = emit(trace(agents.calls_twice))
    verify_module(module)
    assert [f.sym_name.data for f in module.ops if isinstance(f, FuncOp)] == ["calls_twice", "helper"]
    assert len(ops(module, A.CallOp)) == 2


def test_map_over_docs_and_bool_branch() -> None:
    module = emit(trace(agents.mapped))
    verify_module(module)
    text = print_module(module, locations=False)
    assert '"agent.map"(%retrieve, %question) {body = @lambda, expected_len = 4.0' in text
    assert '"agent.select_arm"(%good_enough) {arms = ["keep", "loud"]} : (i1) -> i64' in text


def test_fill_template_writes_constants_and_numbers_fields() -> None:
    assert fill_template("{docs} / {q} ({n}) {{x}}", ["q", "docs"], {"n": 3}) == "{1} / {0} (3) {{x}}"
    assert fill_template("{a!r:>5}", ["a"], {}) == "{0!r:>5}"
    assert fill_template("{c}", [], {"c": "{b}"}) == "{{b}}"
