"""Tracing the four examples: node kinds, types, planning figures, the text view and JSON round trips."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import pytest

import plait
from plait.sdk.graph import NODE_KINDS, AgentGraph
from plait.sdk.loader import load_agent

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ["rag.py:answer", "react.py:solve", "voice.py:assistant", "refine.py:code_review"]

RAG_TEXT = """\
agent answer(%question : text) -> text  {sla: p95_ms=2000, ttft_ms=600; qps: 5}
    %question : text = input[target=question]()  # rag.py:17
    %embed_1 : vec = embed[target=minilm-l6](%question) {input_tokens=64, dim=384}  # rag.py:19
    %retrieve_1 : docs = retrieve[target=wiki](%embed_1) {k=8, doc_tokens=100, index_docs=1000000, dim=384}  # rag.py:19
    %prompt_1 : text = prompt(%question, %retrieve_1) {fields=['q', 'docs'], template_tokens=25}  # rag.py:20
    %llm_1 : text = llm[target=llama-3.1-8b](%prompt_1) {max_tokens=256, prompt_tokens=900, output_tokens=normal(160, 40)}  # rag.py:20
    return %llm_1"""


def traced(example: str) -> AgentGraph:
    return plait.trace(load_agent(str(ROOT / "examples" / example)))


def kinds(graph: AgentGraph) -> list[str]:
    return [node.kind for _, node in graph.walk()]


def test_rag_prints_one_line_per_node() -> None:
    assert str(traced("rag.py:answer")) == RAG_TEXT


def test_rag_graph_is_a_networkx_dag_with_typed_nodes() -> None:
    graph = traced("rag.py:answer")
    assert isinstance(graph, nx.MultiDiGraph)
    assert list(nx.topological_sort(graph)) == ["question", "embed_1", "retrieve_1", "prompt_1", "llm_1",
                                                "output"]
    assert [(n.name, n.type) for n in graph.steps][:3] == [("question", "text"), ("embed_1", "vec"),
                                                           ("retrieve_1", "docs")]
    assert graph.sla == plait.SLA(p95_ms=2000, ttft_ms=600) and graph.qps == 5
    assert graph.params == [plait.Param(name="question", type="text")]
    llm = graph.step("llm_1")
    assert llm.attrs["output_tokens"] == plait.Dist.normal(160, 40) and llm.attrs["max_tokens"] == 256
    assert graph.step("prompt_1").inputs == ["question", "retrieve_1"]
    assert llm.loc == "rag.py:20"


def test_react_loops_over_a_branch_of_tools() -> None:
    graph = traced("react.py:solve")
    loop = graph.step("loop_1")
    assert loop.attrs["max_iters"] == 6 and loop.attrs["expected_iters"] == plait.Dist.uniform(2, 4)
    body = loop.regions["body"]
    assert body.result_types == ["bool", "text"]
    assert body.step(body.output.inputs[0]).target == "is_done" == body.step(str(loop.attrs["until"])).target
    branch = next(n for n in body.steps if n.kind == "branch")
    assert branch.attrs["arms"] == ["search", "calculator", "finish"] and branch.attrs["p"] == [0.55, 0.2, 0.25]
    assert body.step(branch.inputs[0]).target == "parse_action"
    assert [r.steps[1].target for r in branch.regions.values()] == ["search", "calculator", "finish"]
    assert kinds(graph).count("llm") == 2


def test_voice_runs_stt_tool_llm_tts() -> None:
    graph = traced("voice.py:assistant")
    assert [n.kind for n in graph.steps] == ["input", "stt", "tool", "prompt", "llm", "tts", "output"]
    assert graph.params == [plait.Param(name="audio", type="audio")] and graph.result_types == ["audio"]
    assert graph.step("stt_1").target == "whisper-small" and graph.step("tts_1").target == "parler-tts-mini"
    tool = graph.step("web_search_1")
    assert tool.attrs["latency_ms"] == plait.Dist.normal(300, 80) and tool.attrs["cpu"] == 0.5


def test_refine_calls_two_agents_in_a_loop() -> None:
    graph = traced("refine.py:code_review")
    body = graph.step("loop_1").regions["body"]
    calls = [n for n in body.steps if n.kind == "call"]
    assert [c.target for c in calls] == ["coder", "reviewer"]
    assert {c.regions["callee"].step("llm_1" if c.target == "coder" else "llm_2").target for c in calls} == {
        "qwen2.5-32b", "llama-3.1-70b"}
    assert calls[0].regions["callee"].sla == plait.SLA(p95_ms=20000, ttft_ms=2000)
    # the loop reads `task` from the enclosing agent: captured as the body's first parameter
    assert graph.step("loop_1").inputs == ["task", "prompt_1"]
    assert body.step(body.params[0].name).target == "task"


@pytest.mark.parametrize("example", EXAMPLES)
def test_json_round_trips_exactly(example: str) -> None:
    graph = traced(example)
    again = AgentGraph.from_json(graph.to_json())
    assert again == graph
    assert again.to_json() == graph.to_json() and str(again) == str(graph)
    again.lint()


@pytest.mark.parametrize("example", EXAMPLES)
def test_examples_use_only_the_closed_set_of_kinds_and_unique_names(example: str) -> None:
    graph = traced(example)
    names = [node.name for _, node in graph.walk()]
    assert len(names) == len(set(names))
    assert set(kinds(graph)) <= set(NODE_KINDS)
    assert all(node.loc for _, node in graph.walk() if node.kind != "output")


def test_example_tools_are_plain_python() -> None:
    from plait.sdk.loader import load_module

    react = load_module(ROOT / "examples" / "react.py")
    plan = "Thought: compute it\nAction: calculator[2 * (3 + 4)]"
    assert react["parse_action"](plan) == "calculator" and react["action_input"](plan) == "2 * (3 + 4)"
    assert react["calculator"]("2 * (3 + 4)") == "14" and react["is_done"]("Action: finish[14]")
    refine = load_module(ROOT / "examples" / "refine.py")
    record = refine["record_round"]("```python\nx = 1\n```", "fine\nVERDICT: APPROVED")
    assert refine["approved"](record) and refine["final_code"](record) == "x = 1"


def test_speech_transcript_size_keeps_the_clip_lengths_spread() -> None:
    """A transcript's p95 length follows the p95 clip, so the decode is planned for long clips too."""
    @plait.agent
    def hear(audio: bytes) -> str:
        return plait.stt(audio, audio_seconds=plait.Dist.uniform(2, 10))

    tokens = plait.trace(hear).step("stt_1").attrs["output_tokens"]
    assert isinstance(tokens, plait.Dist) and tokens.mean == 18 and tokens.p95 > 28
