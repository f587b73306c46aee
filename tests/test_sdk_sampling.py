"""plait.llm's sampling arguments: checked at the user's line, carried by agent.llm_call and op.decode (upstream
MLIR parses them through the IRDL), and handed to the llm-engine in the device program."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

import plait
from plait.cli import app
from plait.ir import print_module
from plait.ir.dialects.agent import SamplingAttr
from plait.ir.errors import UpstreamMLIRError
from plait.ir.module import parse_module
from plait.ir.pipeline import compile_graph
from plait.ir.upstream import available, check_module, check_text
from plait.sdk.loader import load_agent

runner = CliRunner()
AGENT = '''\
import plait


@plait.agent(qps=2)
def ask(q: str) -> str:
    return plait.llm("llama-3.1-8b", prompt=q, max_tokens=64, {args})
'''
SAMPLED = 'temperature=0.7, top_p=0.9, stop=["\\nObservation:"], seed=7'


def _agent(tmp_path: Path, args: str, name: str = "sampled") -> str:
    path = tmp_path / f"{name}.py"
    path.write_text(AGENT.format(args=args))
    return f"{path}:ask"


def test_the_arguments_reach_the_agent_ir_the_ops_and_the_program(tmp_path: Path) -> None:
    target = _agent(tmp_path, SAMPLED)
    want = 'sampling = #agent.sampling<{temperature = 0.7, top_p = 0.9, seed = 7, stop = ["\\0AObservation:"]}>'
    graph = plait.trace(load_agent(target))
    agent_text = print_module(compile_graph(graph, "agent"))
    assert want in next(line for line in agent_text.splitlines() if "agent.llm_call" in line)
    ops = compile_graph(graph, "ops")
    assert want in next(line for line in print_module(ops).splitlines() if "op.decode" in line)
    assert print_module(parse_module(agent_text)) == agent_text          # parses back to the same text
    done = runner.invoke(app, ["ir", target, "--stage", "program", "--no-verify"])
    assert done.exit_code == 0, done.output
    decode = next(line for line in done.output.splitlines() if " op.decode " in line)
    assert "llm-engine(llama-3.1-8b, unified)" in decode
    assert "sampling={temperature=0.7, top_p=0.9, seed=7, stop=['\\nObservation:']}" in decode


def test_calls_without_them_decode_greedily(tmp_path: Path) -> None:
    graph = plait.trace(load_agent(_agent(tmp_path, "output_tokens=30", name="greedy")))
    assert "temperature" not in graph.steps[-2].attrs                      # the graph keeps only what was given
    decode = next(op for op in compile_graph(graph, "ops").walk() if op.name == "op.decode")
    sampling = decode.attributes["sampling"]
    assert isinstance(sampling, SamplingAttr) and sampling.as_json() == {"temperature": 0.0, "top_p": 1.0}


@pytest.mark.skipif(not available(), reason="upstream MLIR bindings (torch-mlir) not installed")
def test_upstream_parses_the_sampling_attribute_and_requires_it(tmp_path: Path) -> None:
    ops = compile_graph(plait.trace(load_agent(_agent(tmp_path, SAMPLED))), "ops")
    upstream = check_module(ops)
    assert '#agent.sampling<{' in upstream and "seed = 7" in upstream
    text = print_module(ops, generic=True)
    start = text.index(", sampling = #agent.sampling<")
    bad = text[:start] + text[text.index(">", text.index("}>", start)) + 1:]
    with pytest.raises(UpstreamMLIRError, match="'op.decode' op attribute \"sampling\" is expected but not provided"):
        check_text(bad)


@pytest.mark.parametrize(("args", "first"), [
    ("temperature=-0.5", r"plait.llm's temperature must be a finite number >= 0, got -0.5"),
    ("top_p=0", r"plait.llm's top_p must be a number in \(0, 1\], got 0"),
    ("top_p=1.5", r"plait.llm's top_p must be a number in \(0, 1\], got 1.5"),
    ("seed=1.5", r"plait.llm's seed must be an integer from 0 to 2\*\*63 - 1, got 1.5"),
    ("seed=True", r"plait.llm's seed must be an integer from 0 to 2\*\*63 - 1, got True"),
    ('stop="END"', r"plait.llm's stop must be a list of strings, got the string 'END'"),
    ("stop=[1]", r"plait.llm's stop must be a list of non-empty strings, got \[1\]"),
])
def test_bad_values_fail_at_the_users_line(tmp_path: Path, args: str, first: str) -> None:
    target = _agent(tmp_path, args, name="bad")
    with pytest.raises(plait.TraceError, match=f"^{first}\n") as info:
        plait.trace(load_agent(target))
    assert "bad.py:6:" in str(info.value) and "To fix:" in str(info.value)


def test_sampling_attribute_refuses_values_out_of_range() -> None:
    from xdsl.utils.exceptions import VerifyException

    with pytest.raises(VerifyException, match=r"top_p must be in \(0, 1\], got 0.0"):
        SamplingAttr(top_p=0.0)
    bad = textwrap.dedent("""
        builtin.module {
          func.func @f(%p: !agent.text) -> !agent.text {
            %a = agent.llm_call %p {model = "m", max_tokens = 8 : i64, prompt_tokens = #agent.dist<1.0, 1.0>,
              output_tokens = #agent.dist<1.0, 1.0>, sampling = #agent.sampling<{temperature = -1.0, top_p = 1.0}>}
              : !agent.text -> !agent.text
            func.return %a : !agent.text
          }
        }""")
    with pytest.raises(Exception, match=r"temperature must be >= 0, got -1.0"):
        parse_module(bad)
