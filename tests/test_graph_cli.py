"""`plait graph FILE:AGENT`: prints every example, JSON, command-line overrides, and bad input (exit 2)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from plait.cli import app
from plait.sdk.graph import AgentGraph

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ["rag.py:answer", "react.py:solve", "voice.py:assistant", "refine.py:code_review"]
runner = CliRunner()


def plait_graph(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["graph", *args])
    return result.exit_code, result.output


@pytest.mark.parametrize("example", EXAMPLES)
def test_prints_each_example(example: str) -> None:
    code, out = plait_graph(str(ROOT / "examples" / example))
    assert code == 0, out
    assert out.startswith(f"agent {example.split(':')[1]}(") and "return %" in out


def test_json_parses_back_into_the_same_graph() -> None:
    code, out = plait_graph(str(ROOT / "examples/rag.py:answer"), "--json")
    assert code == 0
    data = json.loads(out)
    assert data["format"] == "plait.agentgraph/1" and data["qps"] == 5.0
    assert str(AgentGraph.from_json(out)).startswith("agent answer(%question : text) -> text")


def test_command_line_sla_and_rate_override_the_decorator() -> None:
    code, out = plait_graph(str(ROOT / "examples/rag.py:answer"), "--sla-p95-ms", "800", "--qps", "40")
    assert code == 0
    assert out.splitlines()[0] == "agent answer(%question : text) -> text  {sla: p95_ms=800, ttft_ms=600; qps: 40}"


BAD_AGENT = "import plait\n\n@plait.agent\ndef a(q: str) -> str:\n    if q:\n        return q\n    return q\n"


@pytest.mark.parametrize(("files", "target", "first"), [
    ({}, "nope.py:a", "error: no such agent file: "),
    ({"syn.py": "import plait\n\n@plait.agent\ndef a(q):\n    return q +\n"}, "syn.py:a",
     "error: syntax error in the agent file: invalid syntax"),
    ({"ok.py": BAD_AGENT}, "ok.py:b", "error: no agent 'b' in "),
    ({"ok.py": BAD_AGENT}, "ok.py", "error: expected FILE:AGENT, got "),
    ({"ok.py": BAD_AGENT}, "ok.py:a", "error: symbolic values cannot decide a Python `if`"),
    ({"m.py": "import plait\n\n@plait.agent\ndef a(q):\n    return plait.llm('gpt-4', prompt=q)\n"}, "m.py:a",
     "error: unknown model 'gpt-4' for plait.llm"),
    ({"t.py": "import plait\n\n@plait.agent\ndef a(q):\n    return plait.retrieve(index='w', query=q)\n"},
     "t.py:a", "error: type mismatch between steps: plait.retrieve's query takes vec, but %q gives text"),
    ({"l.py": "import plait\n\n@plait.agent\ndef a(q):\n    return plait.loop(lambda s: s, init=q, "
              "until=plait.tool(lambda s: True))\n"}, "l.py:a",
     "error: plait.loop needs max_iters: an unbounded loop cannot be planned"),
])
def test_bad_input_exits_2_with_a_short_message(tmp_path: Path, files: dict[str, str], target: str,
                                                 first: str) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    code, out = plait_graph(str(tmp_path / target))
    assert code == 2
    assert out.startswith(first), out
    assert "Traceback" not in out and "To fix" in out


def test_relative_paths_and_the_installed_command(tmp_path: Path) -> None:
    import subprocess
    import sys

    (tmp_path / "syn.py").write_text("def a(:\n")
    done = subprocess.run([sys.executable, "-m", "plait.cli", "graph", "syn.py:a"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, env={**os.environ})
    assert done.returncode == 2 and done.stderr.startswith("error: syntax error in the agent file")
    assert "syn.py:1:   def a(:" in done.stderr and "Traceback" not in done.stderr + done.stdout
