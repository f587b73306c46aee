"""Plan folders of tests/agents/cluster_agent.py for the cluster tests (`plait plan --out`, no sweep or simulation)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from plait.cli import app

AGENT = "tests/agents/cluster_agent.py:ask"
RUN = CliRunner()


def make_plan(out: Path, target: str = AGENT, qps: float | None = None) -> Path:
    """`plait plan TARGET --out OUT` (at `qps` if given); returns OUT."""
    args = ["plan", target, "--out", str(out), "--sweep", "0", "--no-simulate"]
    done = RUN.invoke(app, args + (["--qps", str(qps)] if qps else []))
    assert done.exit_code == 0, done.output
    return out


@pytest.fixture(scope="session")
def cluster_plan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One plan folder of AGENT for every cluster test module of the session (import it as a fixture)."""
    return make_plan(tmp_path_factory.mktemp("cluster-plan"))
