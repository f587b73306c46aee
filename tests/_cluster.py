"""Plan folders of tests/agents/cluster_agent.py for the cluster tests (`plait plan --out`, no sweep or simulation)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
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


@dataclass
class Pod:
    """An entrypoint process as a container runs it; its output lines as they come."""

    proc: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)

    def wait_line(self, needle: str, timeout_s: float = 180.0) -> str:
        deadline = time.monotonic() + timeout_s
        while True:
            found = next((line for line in list(self.lines) if needle in line), None)
            if found is not None:
                return found
            if self.proc.poll() is not None or time.monotonic() > deadline:
                time.sleep(0.2)   # the reader's last lines
                raise AssertionError(f"no line with {needle!r}; the process said:\n" + "\n".join(self.lines))
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def launch_entrypoint(env: dict[str, str], cwd: Path) -> Pod:
    """`python -m plait.cluster.entrypoint` with `env` over this environment, as a pod's container runs it."""
    proc = subprocess.Popen([sys.executable, "-m", "plait.cluster.entrypoint"], env={**os.environ, **env},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=cwd)
    pod = Pod(proc)

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            pod.lines.append(line.rstrip())

    threading.Thread(target=read, daemon=True).start()
    return pod
