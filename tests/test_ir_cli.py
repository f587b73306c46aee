"""`plait ir FILE:AGENT --stage agent|ops`: both stages of every example, and short errors for bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from plait.cli import app
from plait.sdk.dist import Dist
from plait.sdk.graph import AgentGraph, Node, Param

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ["rag.py:answer", "react.py:solve", "voice.py:assistant", "refine.py:code_review"]
runner = CliRunner()


def plait_ir(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["ir", *args])
    return result.exit_code, result.output


@pytest.mark.parametrize("example", EXAMPLES)
def test_prints_both_stages_of_each_example(example: str) -> None:
    code, agent = plait_ir(str(ROOT / "examples" / example), "--stage", "agent")
    assert code == 0, agent
    assert agent.startswith("builtin.module {") and '= agent.llm_call %' in agent and "op." not in agent
    code, ops = plait_ir(str(ROOT / "examples" / example), "--stage", "ops")
    assert code == 0, ops
    assert '= op.prefill(%' in ops and '= op.decode %' in ops and "agent.llm_call" not in ops
    assert f'loc("{example.split(":")[0]}":' in ops


def test_generic_form_and_no_locations() -> None:
    code, out = plait_ir(str(ROOT / "examples/rag.py:answer"), "--stage", "ops", "--generic", "--no-loc")
    assert code == 0, out
    assert out.startswith('"builtin.module"() ({') and '"func.func"()' in out and "loc(" not in out


def test_an_unknown_stage_lists_the_valid_ones() -> None:
    code, out = plait_ir(str(ROOT / "examples/rag.py:answer"), "--stage", "place")
    assert code == 2
    assert out.startswith("error: unknown stage 'place'; the stages are: agent, ops, placed, program\n")
    assert "Traceback" not in out


def _broken_graph() -> AgentGraph:
    """An LLM whose prompt is an embedding vector: the emitted module fails verification."""
    graph = AgentGraph(name="broken", params=[Param(name="q", type="text")])
    graph.add(Node(name="q", kind="input", target="q", type="text", loc="broken.py:3"))
    graph.add(Node(name="embed_1", kind="embed", target="minilm-l6", inputs=["q"], type="vec",
                   attrs={"input_tokens": Dist.const(64)}, loc="broken.py:4"))
    graph.add(Node(name="llm_1", kind="llm", target="llama-3.1-8b", inputs=["embed_1"], type="text",
                   attrs={"max_tokens": 64, "prompt_tokens": Dist.const(10)}, loc="broken.py:5"))
    graph.add(Node(name="output", kind="output", inputs=["llm_1"], type=None))
    return graph


def test_a_module_failing_verification_names_op_operand_and_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import plait.sdk

    monkeypatch.setattr(plait.sdk, "trace", lambda *a, **k: _broken_graph())
    code, out = plait_ir(str(ROOT / "examples/rag.py:answer"))
    assert code == 2, out
    first, second = out.splitlines()[:2]
    assert first.startswith("error: 'agent.llm_call' operand 'prompt' at position 0 does not verify")
    assert "!agent.vec" in first
    assert second == "  at broken.py:5 (agent.llm_call)"
    assert "Traceback" not in out


def test_a_pass_failure_is_a_short_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from plait.ir.passes import lower_agent

    class Broken(lower_agent.RewritePattern):
        def match_and_rewrite(self, op: object, rewriter: object, /) -> None:
            raise ValueError("cannot lower this")

    monkeypatch.setattr(lower_agent, "PATTERNS", (Broken,))
    code, out = plait_ir(str(ROOT / "examples/rag.py:answer"), "--stage", "ops")
    assert code == 2
    assert out.startswith("error: pass 'lower-agent-to-op' failed: ValueError: cannot lower this\n")
    assert "Traceback" not in out


@pytest.mark.parametrize("example", EXAMPLES)
def test_placed_stage_puts_every_op_in_a_pool(example: str) -> None:
    code, out = plait_ir(str(ROOT / "examples" / example), "--stage", "placed", "--no-loc")
    assert code == 0, out
    op_lines = [line for line in out.splitlines() if '= op.' in line or 'xfer.' in line]
    assert op_lines and all("pool = " in line for line in op_lines)
    assert "= op.prefill(%" in out and "= op.decode %" in out and "agent.unbox" not in out
    assert ("scf.while" in out) == (example in ("react.py:solve", "refine.py:code_review"))  # loops are regions


def test_upstream_checks_what_plait_ir_prints_unless_no_verify(monkeypatch: pytest.MonkeyPatch) -> None:
    from plait.ir import upstream
    from plait.ir.errors import UpstreamMLIRError

    def reject(module: object) -> str:
        raise UpstreamMLIRError("upstream MLIR rejected the module:\nerror: made up for this test")

    monkeypatch.setattr(upstream, "available", lambda: True)
    monkeypatch.setattr(upstream, "check_module", reject)
    target = str(ROOT / "examples/react.py:solve")
    code, out = plait_ir(target, "--stage", "ops")
    assert code == 2 and out.startswith("error: upstream MLIR rejected the module:\nerror: made up for this test")
    code, out = plait_ir(target, "--stage", "ops", "--no-verify")
    assert code == 0 and out.startswith("builtin.module {")
    read: list[str] = []
    monkeypatch.setattr(upstream, "check_text", lambda text: read.append(text) or text)
    code, out = plait_ir(target, "--stage", "ops", "--generic", "--no-loc")
    assert code == 0 and read == [out]          # the generic form: upstream reads exactly what was printed


def test_says_in_one_line_when_upstream_is_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    from plait.ir import upstream

    monkeypatch.setattr(upstream, "available", lambda: False)
    result = runner.invoke(app, ["ir", str(ROOT / "examples/rag.py:answer")])
    assert result.exit_code == 0 and result.stdout.startswith("builtin.module {")
    assert result.stderr.splitlines() == [upstream.NOT_INSTALLED]
