"""A worker killed mid-request (SIGKILL) with real worker processes: it is restarted in its place, the step it was
running runs again, a tensor it held is made again by the step that made it, a tool marked idempotent=False is
never re-run (the request fails naming it), and a crash loop is given up with a clear error."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from plait.scheduler.driver import Figures
from plait.scheduler.local import LocalRun, faults, prepare

ROOT = Path(__file__).resolve().parents[1]
AGENTS = ROOT / "tests" / "agents" / "faults.py"


def _run(agent: str, run_dir: Path, **kwargs: object) -> LocalRun:
    from plait.cli._agent import traced

    target = f"{AGENTS}:{agent}"
    prepared = prepare(traced(target), target, None, remap_cpu=True)
    return LocalRun(prepared.graph, prepared.programs, run_dir, Figures(), driver_prompts=prepared.driver_prompts,
                    **kwargs)   # type: ignore[arg-type]


@pytest.fixture()
def notes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "notes.txt"
    monkeypatch.setenv("PLAIT_NOTES", str(path))   # spawned workers inherit it
    return path


@pytest.fixture(scope="module")
def answer_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRun]:
    os.environ["PLAIT_NOTES"] = str(tmp_path_factory.mktemp("notes") / "notes.txt")
    with _run("answer", tmp_path_factory.mktemp("run")) as run:
        yield run


def _key(run: LocalRun, prefix: str) -> str:
    return next(k for k in run.workers.specs if k.startswith(prefix))


def _kill_when(run: LocalRun, key: str, seen: Path, text: str) -> int:
    """SIGKILL worker `key` as soon as `text` is in the notes file (the tool has started that call)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if seen.exists() and text in seen.read_text():
            pid = run.workers.procs[key].pid
            os.kill(pid, signal.SIGKILL)
            return pid
        time.sleep(0.02)
    raise AssertionError(f"the tool never started {text!r}")


def _start(run: LocalRun, question: str, notes: Path) -> tuple[threading.Thread, list[Any]]:
    """One request on a thread; its tool call pauses (`sleep:60 ...`) until the test lets it go."""
    Path(f"{notes}.go").unlink(missing_ok=True)
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.extend(run.many([{"question": question}], requests=1)))
    thread.start()
    return thread, result


def _let_go(notes: Path) -> None:
    """The tool's pause ends: the call running again (if any) returns at once."""
    Path(f"{notes}.go").touch()


def _wait_ready(run: LocalRun, key: str) -> None:
    deadline = time.monotonic() + 120
    while not (run.workers.is_ready(key) and run.workers.restarts[key]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert run.workers.is_ready(key), f"{key} did not come back"


def test_tool_worker_killed_mid_call_is_restarted_and_the_step_runs_again(answer_run: LocalRun) -> None:
    """The tool's worker dies while the tool sleeps: the request still gets its answer, the tool ran twice for it
    (an idempotent tool), and the summary says what was run again."""
    notes = Path(os.environ["PLAIT_NOTES"])
    tool = _key(answer_run, "tool")
    question = "sleep:60 request-a"
    thread, result = _start(answer_run, question, notes)
    old_pid = _kill_when(answer_run, tool, notes, question)
    _let_go(notes)
    thread.join(120)
    record = result[0]
    assert record.error is None, record.error
    assert notes.read_text().splitlines().count(question) == 2
    assert [(r.pool, r.kind, r.why) for r in record.retries] == [(tool.split("/")[0], "tool", "lost")]
    assert answer_run.workers.restarts[tool] == 1 and answer_run.workers.procs[tool].pid != old_pid
    line = faults([record], answer_run.workers.restarts)
    assert line.startswith(f"worker restarts: 1 ({tool} x1); steps run again: 1 (1 tool on ")


def test_lost_embedding_is_recomputed_over_new_gloo_pairs(answer_run: LocalRun) -> None:
    """The encoder dies (the request's embedding, held there, is lost), then the tool's worker dies mid-call:
    running the tool again needs the embedding, so the embed step runs again on the restarted encoder and the
    tensor crosses a new Gloo pair between the two restarted workers."""
    notes = Path(os.environ["PLAIT_NOTES"])
    encoder, tool = _key(answer_run, "encoder"), _key(answer_run, "tool")
    restarts = dict(answer_run.workers.restarts)
    question = "sleep:60 request-b"
    thread, result = _start(answer_run, question, notes)
    _kill_when(answer_run, encoder, notes, question)
    _wait_ready(answer_run, encoder)
    os.kill(answer_run.workers.procs[tool].pid, signal.SIGKILL)
    _let_go(notes)
    thread.join(120)
    record = result[0]
    assert record.error is None, record.error
    kinds = sorted((r.kind, r.why) for r in record.retries)
    assert kinds == [("embed", "recompute"), ("tool", "lost")]
    assert answer_run.workers.restarts[encoder] == restarts[encoder] + 1
    assert answer_run.workers.restarts[tool] == restarts[tool] + 1
    moved = [name for name, _ in record.steps if name.startswith("transfer ")]
    assert moved == [f"transfer {encoder}->{tool}"] * 2   # the first copy died with the tool's first start


def test_non_idempotent_tool_is_never_rerun(notes: Path, tmp_path: Path) -> None:
    with _run("pay", tmp_path / "run") as run:
        tool = _key(run, "tool")
        question = "sleep:60 order-17"
        thread, result = _start(run, question, notes)
        _kill_when(run, tool, notes, question)
        _let_go(notes)
        thread.join(120)
        error = result[0].error
        assert error is not None and error.startswith("tool 'charge' at faults.py:")
        assert "is marked @plait.tool(idempotent=False), and its worker" in error and "does not run it again" in error
        assert notes.read_text().splitlines() == [question]   # it ran once
        _wait_ready(run, tool)
        again = run.many([{"question": "order-18"}], requests=1)[0]   # the restarted worker serves the next one
        assert again.error is None and again.output == "charged order-18"


def test_crash_loop_is_given_up_with_a_clear_error(notes: Path, tmp_path: Path) -> None:
    with _run("pay", tmp_path / "run", max_restarts=1) as run:
        tool = _key(run, "tool")
        os.kill(run.workers.procs[tool].pid, signal.SIGKILL)
        _wait_ready(run, tool)
        os.kill(run.workers.procs[tool].pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while run.workers.state[tool] != "failed" and time.monotonic() < deadline:
            time.sleep(0.05)
        record = run.many([{"question": "order-19"}], requests=1)[0]
        assert record.error is not None
        assert f"worker {tool} died 2 times within 300 s, and a worker is restarted at most 1 time(s)" in record.error
        assert "a crash loop, so it is not restarted again" in record.error
        assert "plait.worker: " in record.error   # the last lines of its log
        assert run.workers.restarts[tool] == 1 and not notes.exists()
