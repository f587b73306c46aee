"""Each control-flow construct with its planning figures: loop, branch, map, gather, agent calls."""

from __future__ import annotations

import pytest

import plait


@plait.tool(latency_ms=2, output_tokens=30)
def critique(draft: str) -> str:
    return draft


@plait.tool(latency_ms=0.1)
def good_enough(draft: str) -> bool:
    return len(draft) > 100


@plait.tool(latency_ms=0.1)
def route(question: str) -> str:
    return "short" if len(question) < 40 else "long"


@plait.tool(latency_ms=0.1)
def is_short(question: str) -> bool:
    return len(question) < 40


def short(q: plait.Sym) -> plait.Sym:
    return plait.llm("llama-3.2-1b", prompt=q, max_tokens=64)


def long(q: plait.Sym) -> plait.Sym:
    return plait.llm("llama-3.1-70b", prompt=q, max_tokens=512)


def test_loop_records_body_predicate_and_iteration_figures() -> None:
    @plait.agent
    def polish(topic: str) -> str:
        def improve(draft: plait.Sym) -> plait.Sym:
            return critique(plait.llm("mistral-7b", prompt=plait.prompt("{t}: {d}", t=topic, d=draft)))

        return plait.loop(improve, init=topic, until=good_enough, max_iters=5,
                          expected_iters=plait.Dist.normal(2.5, 1))

    graph = plait.trace(polish)
    loop = graph.step("loop_1")
    assert loop.kind == "loop" and loop.target == "improve" and loop.type == "text"
    assert loop.attrs["max_iters"] == 5 and loop.attrs["expected_iters"].mean == 2.5  # type: ignore[union-attr]
    assert loop.inputs == ["topic", "topic"]  # the captured topic, then init
    body = loop.regions["body"]
    assert [p.name for p in body.params] == ["topic_1", "draft"]
    assert body.output.inputs == ["good_enough_1", "critique_1"] and loop.attrs["until"] == "good_enough_1"
    assert body.step("good_enough_1").inputs == ["critique_1"]


def test_loop_expected_iters_defaults_to_max_and_must_fit() -> None:
    @plait.agent
    def a(q: str) -> str:
        return plait.loop(critique, init=q, until=good_enough, max_iters=3)

    assert plait.trace(a).step("loop_1").attrs["expected_iters"] == plait.Dist.const(3)

    @plait.agent
    def b(q: str) -> str:
        return plait.loop(critique, init=q, until=good_enough, max_iters=3, expected_iters=7)

    with pytest.raises(plait.TraceError, match=r"^plait.loop's expected_iters \(7\) must lie between 1"):
        plait.trace(b)


def test_branch_by_name_records_arms_and_probabilities() -> None:
    @plait.agent
    def ask(q: str) -> str:
        return plait.branch(route(q), q, arms=[short, long], p=[0.7, 0.3])

    graph = plait.trace(ask)
    node = graph.step("branch_1")
    assert node.inputs == ["route_1", "q"] and node.type == "text"
    assert node.attrs == {"arms": ["short", "long"], "p": [0.7, 0.3]}
    assert list(node.regions) == ["short", "long"]
    assert [n.target for n in node.regions["long"].steps if n.kind == "llm"] == ["llama-3.1-70b"]


def test_branch_on_a_predicate_tool_with_dict_arms_and_captures() -> None:
    @plait.agent
    def ask(q: str, context: str) -> str:
        def with_context(x: plait.Sym) -> plait.Sym:
            return plait.llm("llama-3.1-8b", prompt=plait.prompt("{c}\n{x}", c=context, x=x))

        return plait.branch(is_short, q, arms={"fast": short, "grounded": with_context})

    node = plait.trace(ask).step("branch_1")
    assert node.attrs["p"] == [0.5, 0.5] and node.attrs["arms"] == ["fast", "grounded"]
    assert node.inputs == ["is_short_1", "q", "context"]  # selector, args, then every arm's captures
    assert [[p.type for p in r.params] for r in node.regions.values()] == [["text", "text"]] * 2


def test_branch_probabilities_must_sum_to_one() -> None:
    @plait.agent
    def ask(q: str) -> str:
        return plait.branch(route(q), q, arms=[short, long], p=[0.7, 0.7])

    with pytest.raises(plait.TraceError, match=r"^plait.branch's p must give one probability in \[0, 1\] per arm"):
        plait.trace(ask)


def test_map_over_retrieved_docs_defaults_expected_len_to_k() -> None:
    @plait.agent
    def summarize(q: str) -> str:
        docs = plait.retrieve(index="papers", query=plait.embed(q, model="bge-base"), k=5, doc_tokens=400)
        notes = plait.map(lambda d: plait.llm("llama-3.2-1b", prompt=plait.prompt("Summarize: {d}", d=d),
                                              max_tokens=80), docs)
        return plait.llm("llama-3.1-8b", prompt=plait.prompt("{n}", n=notes))

    graph = plait.trace(summarize)
    node = graph.step("map_1")
    assert node.attrs["expected_len"] == plait.Dist.const(5) and node.type == "texts"
    body = node.regions["body"]
    assert body.params == [plait.Param(name="d", type="text")]
    assert body.step("llm_1").attrs["prompt_tokens"] == plait.Dist.const(402)  # one 400-token doc + template
    assert graph.step("retrieve_1").attrs["dim"] == 768


def test_map_needs_expected_len_when_unknown() -> None:
    @plait.tool
    def split(text: str) -> list[str]:
        return text.split()

    @plait.agent
    def each(q: str) -> str:
        return plait.llm("llama-3.1-8b", prompt=plait.prompt("{x}", x=plait.map(critique, split(q))))

    with pytest.raises(plait.TraceError, match="^plait.map needs expected_len"):
        plait.trace(each)


def test_fan_out_and_gather() -> None:
    @plait.agent
    def panel(q: str) -> str:
        a = plait.llm("llama-3.1-8b", prompt=q, max_tokens=100)
        b = plait.llm("mistral-7b", prompt=q, max_tokens=100)
        both = plait.gather(a, b)
        return plait.llm("llama-3.1-70b", prompt=plait.prompt("Merge: {both}", both=both))

    graph = plait.trace(panel)
    assert graph.step("gather_1").inputs == ["llm_1", "llm_2"] and graph.step("gather_1").type == "texts"
    assert not graph.has_edge("llm_1", "llm_2") and not graph.has_edge("llm_2", "llm_1")  # parallel
    assert graph.step("llm_3").attrs["prompt_tokens"] == plait.Dist.const(201)


def test_agent_calling_agent_records_a_call_with_the_callee_graph() -> None:
    @plait.agent(sla=plait.SLA(p95_ms=500))
    def inner(text: str) -> str:
        return plait.llm("llama-3.2-1b", prompt=text, max_tokens=32)

    @plait.agent(qps=3)
    def outer(q: str) -> str:
        return inner(inner(q))

    graph = plait.trace(outer)
    calls = [n for n in graph.steps if n.kind == "call"]
    assert [c.inputs for c in calls] == [["q"], ["inner_1"]]
    callee = calls[0].regions["callee"]
    assert callee.agent_name == "inner" and callee.sla == plait.SLA(p95_ms=500)
    assert callee.params[0].type == "text" and callee.result_types == ["text"]
    assert graph.qps == 3


def test_trace_overrides_sla_and_qps() -> None:
    @plait.agent(sla=plait.SLA(p95_ms=1000), qps=1)
    def a(q: str) -> str:
        return plait.llm("llama-3.1-8b", prompt=q)

    graph = plait.trace(a, sla=plait.SLA(p95_ms=400), qps=20)
    assert graph.sla == plait.SLA(p95_ms=400) and graph.qps == 20


def test_dist_figures() -> None:
    assert plait.Dist.normal(100, 10).p95 == pytest.approx(116.45, abs=0.01)
    assert plait.Dist.uniform(2, 4).mean == 3 and plait.Dist.uniform(2, 4).p95 == pytest.approx(3.9)
    assert plait.Dist.const(7).p95 == 7 and str(plait.Dist.normal(2, 0.5)) == "normal(2, 0.5)"
    with pytest.raises(ValueError):
        plait.Dist.normal(-1, 2)


def test_tools_and_agents_run_as_plain_python_outside_tracing() -> None:
    assert route("hi") == "short" and good_enough("x" * 200) is True
    with pytest.raises(plait.TraceError, match="^plait.llm can only be called while an agent is being traced"):
        short("hello")  # type: ignore[arg-type]


def test_a_value_from_two_scopes_up_is_captured_once_per_region() -> None:
    """Found by the property test: reading an agent's value twice inside a branch arm inside a loop body
    made the arm two inputs for one capture, and the graph failed its lint."""
    @plait.agent
    def a(q: str) -> str:
        docs = plait.prompt("{d}", d=plait.retrieve(index="kb", query=plait.embed(q), k=2))

        def body(state: plait.Sym) -> plait.Sym:
            def quick(x: plait.Sym) -> plait.Sym:
                return plait.llm("llama-3.2-1b", prompt=x, max_tokens=8)

            def thorough(x: plait.Sym) -> plait.Sym:
                plait.llm("llama-3.2-1b", prompt=docs, max_tokens=8)
                return plait.llm("llama-3.1-8b", prompt=docs, max_tokens=8)

            return plait.branch(is_short(state), state, arms=[quick, thorough])

        return plait.loop(body, init=q, until=is_short, max_iters=2)

    graph = plait.trace(a)
    (loop,) = [n for n in graph.steps if n.kind == "loop"]
    (branch,) = [n for n in loop.regions["body"].steps if n.kind == "branch"]
    arm = branch.regions["thorough"]
    assert len(arm.params) == 2 and len([n for n in arm.steps if n.kind == "input"]) == 2
    llms = [n for n in arm.steps if n.kind == "llm"]
    assert llms[0].inputs == llms[1].inputs == [arm.params[1].name]
