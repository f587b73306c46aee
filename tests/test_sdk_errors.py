"""Bad input through the API: each error's first line states the rule, then where and how to fix it."""

from __future__ import annotations

from pathlib import Path

import pytest

import plait
from plait.sdk.loader import load_agent

BAD = '''\
import plait


@plait.tool(latency_ms=5)
def check(x: str) -> bool:
    return bool(x)


@plait.agent
def if_on_sym(q: str) -> str:
    a = plait.llm("llama-3.1-8b", prompt=q)
    if a:
        return a
    return q


@plait.agent
def while_on_sym(q: str) -> str:
    while check(q):
        pass
    return q


@plait.agent
def for_on_sym(q: str) -> str:
    docs = plait.retrieve(index="w", query=plait.embed(q), k=3)
    for d in docs:
        pass
    return q


@plait.agent
def len_on_sym(q: str) -> str:
    docs = plait.retrieve(index="w", query=plait.embed(q), k=3)
    return q if len(docs) else q


@plait.agent
def bool_on_sym(q: str) -> str:
    flag = bool(check(q))
    return q


@plait.agent
def mismatch(q: str) -> str:
    return check(plait.embed(q))


@plait.agent
def unknown_model(q: str) -> str:
    return plait.llm("llama-3.1-8", prompt=q)


@plait.agent
def wrong_kind(q: str) -> str:
    return plait.llm("minilm-l6", prompt=q)


@plait.agent
def unbounded(q: str) -> str:
    return plait.loop(lambda s: s, init=q, until=check)


@plait.agent
def retrieve_text(q: str) -> str:
    return plait.retrieve(index="w", query=q)
'''

CASES = {
    "if_on_sym": (r"^symbolic values cannot decide a Python `if`\n", "bad.py:12:   if a:", "plait.branch"),
    "while_on_sym": (r"^symbolic values cannot decide a Python `while`\n", "bad.py:19:", "plait.loop"),
    "for_on_sym": (r"^symbolic values cannot be iterated by a Python `for`", "bad.py:27:   for d in docs:",
                   "plait.map"),
    "len_on_sym": (r"^symbolic values have no len\(\) at trace time\n", "bad.py:35:", "expected_len"),
    "bool_on_sym": (r"^symbolic values have no truth value at trace time", "bad.py:40:", "@plait.tool"),
    "mismatch": (r"^type mismatch between steps: tool check's parameter 'x' takes text, but %embed_1 gives vec\n",
                 "bad.py:46:", "To fix: pass a text value"),
    "unknown_model": (r"^unknown model 'llama-3.1-8' for plait.llm\n", "bad.py:51:",
                      "did you mean 'llama-3.1-8b'?"),
    "wrong_kind": (r"^model 'minilm-l6' is an encoder model, but plait.llm needs an llm model\n", "bad.py:56:",
                   "llama-3.1-8b"),
    "unbounded": (r"^plait.loop needs max_iters: an unbounded loop cannot be planned\n", "bad.py:61:",
                  "max_iters=N"),
    "retrieve_text": (r"^type mismatch between steps: plait.retrieve's query takes vec, but %q gives text\n",
                      "bad.py:66:", "To fix"),
}


@pytest.fixture(scope="module")
def bad_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("agents") / "bad.py"
    path.write_text(BAD)
    return path


@pytest.mark.parametrize("agent", sorted(CASES))
def test_trace_errors_state_the_rule_the_place_and_the_fix(bad_file: Path, agent: str) -> None:
    first, where, fix = CASES[agent]
    with pytest.raises(plait.TraceError, match=first) as info:
        plait.trace(load_agent(f"{bad_file}:{agent}"))
    message = str(info.value)
    assert where in message and fix in message and "To fix" in message


def test_control_flow_errors_name_the_step_that_made_the_value(bad_file: Path) -> None:
    with pytest.raises(plait.TraceError) as info:
        plait.trace(load_agent(f"{bad_file}:if_on_sym"))
    assert "`a` is the output of step %llm_1 (llm[llama-3.1-8b], bad.py:11)" in str(info.value)
    assert "docs/tracing.md#limitations-of-tracing" in str(info.value)


def test_tool_annotation_mismatch_with_constant_prompt_and_fstring() -> None:
    @plait.agent
    def fmt(q: str) -> str:
        return plait.llm("llama-3.1-8b", prompt=f"Answer: {q}")

    with pytest.raises(plait.TraceError, match=r"^symbolic values cannot be used in Python operations \(formatting"):
        plait.trace(fmt)


def test_agent_return_annotation_is_checked() -> None:
    @plait.agent
    def wrong(q: str) -> bytes:
        return plait.llm("llama-3.1-8b", prompt=q)

    with pytest.raises(plait.TraceError, match="^type mismatch: agent 'wrong' is annotated to return audio"):
        plait.trace(wrong)


def test_prompt_fields_must_match_values() -> None:
    @plait.agent
    def a(q: str) -> str:
        return plait.llm("llama-3.1-8b", prompt=plait.prompt("{q} {docs}", q=q))

    with pytest.raises(plait.TraceError, match=r"^plait.prompt's template needs \{docs\}, which was not given"):
        plait.trace(a)


@plait.tool
def always(x: str) -> bool:
    return True


def test_value_escaping_its_region_is_an_error() -> None:
    leaked: list[plait.Sym] = []

    @plait.agent
    def a(q: str) -> str:
        def body(x: plait.Sym) -> plait.Sym:
            leaked.append(plait.llm("llama-3.1-8b", prompt=x))
            return leaked[-1]

        plait.loop(body, init=q, until=always, max_iters=2)
        return plait.llm("llama-3.1-8b", prompt=leaked[0])

    with pytest.raises(plait.TraceError, match="^value %llm_1 cannot be used outside the plait.loop body"):
        plait.trace(a)


def test_trace_needs_an_agent() -> None:
    with pytest.raises(plait.TraceError, match="^plait.trace needs a @plait.agent function"):
        plait.trace(len)  # type: ignore[arg-type]


@pytest.mark.parametrize(("target", "first"), [
    ("missing.py:answer", r"^no such agent file: '.*missing.py'\n"),
    ("bad.py", r"^expected FILE:AGENT, got '.*bad.py'\n"),
    ("bad.py:if_on_sim", r"^no agent 'if_on_sim' in .*bad.py\n  To fix: did you mean .*bad.py:if_on_sym\?"),
    ("bad.py:check", r"^'check' in .*bad.py is not a @plait.agent \(it is a @plait.tool\)\n"),
])
def test_load_errors(bad_file: Path, target: str, first: str) -> None:
    with pytest.raises(plait.LoadError, match=first):
        load_agent(str(bad_file.parent / target))


def test_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.py"
    path.write_text("import plait\n\n@plait.agent\ndef a(q):\n    return q +\n")
    with pytest.raises(plait.LoadError, match=r"^syntax error in the agent file: invalid syntax\n") as info:
        load_agent(f"{path}:a")
    assert "broken.py:5:   return q +" in str(info.value)


def test_a_wrong_return_type_names_the_agents_file(tmp_path: Path) -> None:
    path = tmp_path / "mapper.py"
    path.write_text(
        "import plait\n\n"
        "@plait.tool(latency_ms=5)\n"
        "def up(x: str) -> str:\n"
        "    return x\n\n"
        "@plait.agent(qps=1)\n"
        "def run(q: str) -> str:\n"
        "    docs = plait.retrieve(index='w', query=plait.embed(q, model='minilm-l6'), k=4)\n"
        "    return plait.map(up, docs)\n")
    with pytest.raises(plait.TraceError, match="^type mismatch: agent 'run' is annotated to return text") as err:
        plait.trace(load_agent(f"{path}:run"))
    assert "mapper.py:8:   def run(q: str) -> str:" in str(err.value)
