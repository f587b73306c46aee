"""The report says what the plan does: transfers that move data, tool shares in cores, the frontier's price basis."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from plait.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def react_report(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("react")
    done = runner.invoke(app, ["plan", "examples/react.py:solve", "--out", str(out), "--sweep", "3",
                               "--no-simulate", "--price", "tco"])
    assert done.exit_code == 0, done.output
    return (out / "report.md").read_text() + (out / "report.html").read_text()


def _section(report: str, title: str) -> str:
    return report.split(f"## {title}", 1)[1].split("\n## ", 1)[0]


def test_ordering_only_edges_are_not_listed_as_transfers(react_report: str) -> None:
    """A branch's arms run in turn (search before calculator): an ordering edge with no bytes, not a transfer."""
    transfers = _section(react_report, "Transfers between pools")
    assert "tool:search@react.py:118 -> tool:calculator@react.py:118" not in transfers
    assert "tool:calculator@react.py:118 -> tool:finish@react.py:118" not in transfers
    assert "decode:llama-3.1-8b@react.py:115 -> tool:observe@react.py:120" in transfers  # data still listed


def test_a_tool_stage_reads_in_cores(react_report: str) -> None:
    stages = _section(react_report, "Stages")
    row = next(line for line in stages.splitlines() if line.startswith("| tool:is_done@react.py:123"))
    assert "| 1 core |" in row and "0.125" not in row


def test_the_frontier_names_its_price_basis(react_report: str) -> None:
    assert "## TCO versus SLA (TCO: capex over 4 years + power)" in react_report
    assert "| SLA p95 ms | $/hour (tco) |" in react_report
    html_section = react_report.split("TCO versus SLA (TCO: capex over 4 years + power)</h2>", 1)[1]
    assert "data:image/png;base64" in html_section.split("<h2", 1)[0]  # the figure still follows its table
