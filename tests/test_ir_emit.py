"""Emission: each example's AgentGraph becomes a verified `agent` module with locations and figures."""

from __future__ import annotations

from pathlib import Path

import _ir_agents as agents
import pytest
from xdsl.dialects import scf
from xdsl.dialects.builtin import IntegerAttr, ModuleOp
from xdsl.dialects.func import CallOp, FuncOp
from xdsl.ir import Operation

from plait.ir import print_module, user_loc, verify_module
from plait.ir.dialects import agent as A
from plait.ir.dialects.control import ITERS, MAX_ITERS, arms
from plait.ir.emit import emit, fill_template
from plait.sdk import trace
from plait.sdk.loader import load_agent

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = {"rag.py:answer": ["answer"], "react.py:solve": ["solve"], "voice.py:assistant": ["assistant"],
            "refine.py:code_review": ["code_review", "coder", "reviewer"]}


def example(target: str) -> ModuleOp:
    module = emit(trace(load_agent(str(ROOT / "examples" / target))))
    verify_module(module)
    return module


def ops(module: ModuleOp, kind: type[Operation]) -> list[Operation]:
    return [op for op in module.walk() if isinstance(op, kind)]


@pytest.mark.parametrize("target", EXAMPLES)
def test_each_example_emits_one_function_per_agent(target: str) -> None:
    module = example(target)
    funcs = [op for op in module.ops if isinstance(op, FuncOp)]
    assert [f.sym_name.data for f in funcs] == EXAMPLES[target]
    assert funcs[0].sym_visibility is None and all(f.sym_visibility is not None for f in funcs[1:])
    assert ops(module, A.LLMCallOp)
    file = target.split(":")[0]
    assert all((user_loc(op) or "").startswith(f"{file}:") for op in module.walk()
               if op.name.startswith(("agent.", "scf.", "func.call")) and op.name not in ("agent.box",))


def test_rag_keeps_figures_lines_and_boxes_the_mixed_prompt() -> None:
    module = example("rag.py:answer")
    (llm,) = ops(module, A.LLMCallOp)
    assert isinstance(llm, A.LLMCallOp)
    assert user_loc(llm) == "rag.py:20" and llm.model.data == "llama-3.1-8b"
    mean, p95 = llm.output_tokens.values
    assert mean == 160.0 and 225 < p95 < 226
    (retrieve,) = ops(module, A.RetrieveOp)
    assert 'k = 8 : i64, doc_tokens = 100 : i64, index_docs = 1000000 : i64, dim = 384' in str(retrieve)
    (prompt,) = ops(module, A.PromptOp)
    assert isinstance(prompt, A.PromptOp)
    assert [type(v.owner) for v in prompt.args] == [A.BoxOp, A.BoxOp]  # text and docs: one type upstream
    assert "Passages:\n{1}\n\nQuestion: {0}" in prompt.template.data


def test_react_loop_and_branch_are_regions_with_the_tools_inside() -> None:
    module = example("react.py:solve")
    (select,) = ops(module, A.SelectArmOp)
    (branch,) = ops(module, scf.IndexSwitchOp)
    (loop,) = ops(module, scf.WhileOp)
    assert isinstance(select, A.SelectArmOp) and isinstance(branch, scf.IndexSwitchOp)
    assert [a.data for a in select.arms.data] == ["search", "calculator", "finish"]
    assert branch.arg.owner is select and branch.parent_op() is loop
    tools = [[op.tool.data for op in region.walk() if isinstance(op, A.ToolCallOp)] for region in arms(branch)]
    assert tools == [["search"], ["calculator"], ["finish"]]
    assert loop.attributes[ITERS] == A.DistAttr(3.0, 3.9) and loop.attributes[MAX_ITERS] == IntegerAttr(6, 64)
    transcript = loop.before_region.block.args[0]
    assert transcript.type == A.TextType() and transcript.name_hint == "transcript"


def test_voice_speech_figures() -> None:
    module = example("voice.py:assistant")
    (stt,) = ops(module, A.STTOp)
    (tts,) = ops(module, A.TTSOp)
    assert "prompt_tokens = #agent.dist<1500.0, 1500.0>" in str(stt)    # one 30 s whisper window of frames
    assert 'vocoder = "parler-tts-mini"' in str(tts) and "output_tokens = #agent.dist<1576.23, 1576.23>" in str(tts)


def test_a_loop_reads_captures_with_their_own_types() -> None:
    module = emit(trace(agents.mixed_loop))
    verify_module(module)
    (loop,) = ops(module, scf.WhileOp)
    assert isinstance(loop, scf.WhileOp) and [v.type for v in loop.arguments] == [A.TextType()]
    (prompt,) = [op for op in loop.before_region.walk() if isinstance(op, A.PromptOp)]
    boxed = [v.owner.value.type for v in prompt.args if isinstance(v.owner, A.BoxOp)]  # the prompt's mixed slot only
    assert boxed == [A.TextType(), A.DocsType(), A.TextType()]
    assert "unbox" not in print_module(module)


def functions(module: ModuleOp) -> list[str]:
    return [f.sym_name.data for f in module.ops if isinstance(f, FuncOp)]


def prompt_tokens(module: ModuleOp, function: str) -> list[tuple[str, float]]:
    fn = next(f for f in module.ops if isinstance(f, FuncOp) and f.sym_name.data == function)
    return [(op.model.data, op.prompt_tokens.values[0]) for op in fn.walk() if isinstance(op, A.LLMCallOp)]


def test_calls_with_different_figures_get_their_own_functions() -> None:
    module = emit(trace(agents.short_and_long))
    verify_module(module)
    assert functions(module) == ["short_and_long", "summarize", "summarize_1"]
    assert [c.callee.root_reference.data for c in ops(module, CallOp)] == ["summarize", "summarize_1"]
    (short,), (long,) = prompt_tokens(module, "summarize"), prompt_tokens(module, "summarize_1")
    assert short[1] < 100 and long[1] > 3500


def test_agents_from_one_factory_keep_their_models() -> None:
    module = emit(trace(agents.small_then_large))
    assert functions(module) == ["small_then_large", "answerer", "answerer_1"]
    assert [m for f in ("answerer", "answerer_1") for m, _ in prompt_tokens(module, f)] == ["llama-3.2-1b",
                                                                                           "llama-3.1-70b"]


def test_identical_calls_share_one_function() -> None:
    module = emit(trace(agents.calls_alike))
    verify_module(module)
    assert functions(module) == ["calls_alike", "helper"]
    assert [c.callee.root_reference.data for c in ops(module, CallOp)] == ["helper", "helper"]


def test_map_over_docs_and_bool_branch() -> None:
    module = emit(trace(agents.mapped))
    verify_module(module)
    text = print_module(module, locations=False)
    assert "scf.for %i = %0 to %retrieve_len step %1 iter_args(%acc_1 = %acc) -> (!agent.texts) {" in text
    assert "%d = agent.item %retrieve[%i] : !agent.docs" in text
    assert "} {agent.len = #agent.dist<4.0, 4.0>}" in text
    assert 'agent.select_arm %good_enough {arms = ["keep", "loud"]} : i1' in text


def test_fill_template_writes_constants_and_numbers_fields() -> None:
    assert fill_template("{docs} / {q} ({n}) {{x}}", ["q", "docs"], {"n": 3}) == "{1} / {0} (3) {{x}}"
    assert fill_template("{a!r:>5}", ["a"], {}) == "{0!r:>5}"
    assert fill_template("{c}", [], {"c": "{b}"}) == "{{b}}"
