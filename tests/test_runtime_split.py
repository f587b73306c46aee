"""Split prefill and decode pools at run time: the planner's split plan of tests/agents/handoff.py, remapped onto
CPU workers, runs each LLM call's prefill on the prefill worker and moves its KV cache over their Gloo pair to the
decode worker. Greedy tokens equal a unified run's of the same model and prompts; a killed decode worker fails the
call and leaks nothing on the prefill side."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from plait.scheduler.driver import Figures
from plait.scheduler.local import LocalRun, prepare

ROOT = Path(__file__).resolve().parents[1]
TARGET = f"{ROOT}/tests/agents/handoff.py:draft_and_check"
SHARED = "You are a careful assistant. Answer in one short sentence, then stop. " * 3   # > 2 KV blocks of tokens
QUESTIONS = [SHARED + q for q in ("How tall is the Eiffel Tower?", "What is Mount Everest?", "Who wrote Hamlet?",
                                  "Why is the sky blue?", "What is light?", "When was Python released?")]
MAX_TOKENS = 12


def plan_dir(tmp: Path, split: bool) -> Path:
    """plan.json and placed.mlir as `plait plan --out` writes them: split with the agent's SLA, unified with 30 s
    p95 and no TPOT target (on the same inventory)."""
    from plait.cli._agent import traced
    from plait.planner.catalog import load_catalog
    from plait.planner.inventory import load_inventory
    from plait.planner.planning import plan_agent, targets_of

    graph = traced(TARGET)
    targets = None if split else replace(targets_of(graph), p95_s=30.0, tpot_s=None)
    inventory = load_inventory(ROOT / "tests/agents/handoff.inventory.yaml", load_catalog())
    result = plan_agent(graph, source=TARGET, sweep_points=0, inventory=inventory, targets=targets)
    roles = sorted(p.role for p in result.plan.pools)
    assert roles == (["decode", "prefill"] if split else ["unified"]), roles
    (tmp / "plan.json").write_text(result.plan.model_dump_json())
    (tmp / "placed.mlir").write_text(result.placed_text)
    return tmp


def local_run(tmp: Path, split: bool) -> LocalRun:
    from plait.cli._agent import traced

    graph = traced(TARGET)
    prepared = prepare(graph, TARGET, plan_dir(tmp, split), remap_cpu=True)   # type: ignore[arg-type]
    return LocalRun(graph, prepared.programs, tmp / "run", Figures(follow=True), driver_prompts=prepared.driver_prompts,   # type: ignore[arg-type]
                    max_tokens=MAX_TOKENS)


@pytest.fixture(scope="module")
def unified_tokens(tmp_path_factory: pytest.TempPathFactory) -> list[list[list[int]]]:
    """Each question's two calls' output tokens in a unified run (request i asks QUESTIONS[i])."""
    with local_run(tmp_path_factory.mktemp("unified"), split=False) as run:
        records = run.many([{"q": q} for q in QUESTIONS], requests=len(QUESTIONS), concurrency=3)
    assert [r.error for r in records] == [None] * len(QUESTIONS)
    return [r.token_ids for r in sorted(records, key=lambda r: r.request)]


@pytest.fixture(scope="module")
def split(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRun]:
    with local_run(tmp_path_factory.mktemp("split"), split=True) as run:
        yield run


def _worker(run: LocalRun, role: str) -> str:
    health = run.workers.health()
    (key,) = [k for k, h in health.items() if isinstance(h, dict) and h.get("llm_role") == role]
    return key


def test_split_run_makes_the_unified_runs_tokens(split: LocalRun, unified_tokens: list[list[list[int]]]) -> None:
    """Six requests, three at a time, each two LLM calls through the prefill and decode workers: every call's greedy
    tokens equal the unified run's (the KV cache arrived intact), and each call reports TTFT and TPOT."""
    records = split.many([{"q": q} for q in QUESTIONS], requests=len(QUESTIONS), concurrency=3)
    assert [r.error for r in records] == [None] * len(QUESTIONS)
    assert [r.token_ids for r in sorted(records, key=lambda r: r.request)] == unified_tokens
    assert all(len(call) == MAX_TOKENS for calls in unified_tokens for call in calls)
    assert len({tuple(calls[0]) for calls in unified_tokens}) > 1   # the prompts lead to different tokens
    for r in records:
        names = [name for name, _ in r.steps]
        assert names.count("llm llama-3.1-8b prefill") == 2 and names.count("llm llama-3.1-8b decode") == 2
        assert sum(n.startswith("transfer llm-llama-3.1-8b-0/0->llm-llama-3.1-8b-1/0") for n in names) == 2
        assert len(r.llm) == 2 and all(ttft > 0 and tpot is not None and tpot > 0 and n == MAX_TOKENS
                                       for _, ttft, tpot, n in r.llm)


def test_a_streamed_split_call_streams_from_its_decode_worker(split: LocalRun) -> None:
    """A server's stream of the agent's final call over split pools: the decode worker sends the text as it comes,
    starting with the first token the prefill worker sampled, and the pieces add up to the call's output."""
    pieces: list[str] = []
    record = split.driver.run({"q": QUESTIONS[0]}, on_token=pieces.append)
    assert record.error is None, record.error
    # random weights often make byte tokens that are not whole UTF-8 characters, held back until the end, so
    # the number of pieces varies; what must hold is that they add up to the output, first token included
    assert pieces and "".join(pieces) == record.output


def test_decode_batches_both_call_sites_and_prefill_reuses_prefixes(split: LocalRun) -> None:
    """After concurrent requests, the decode worker's engine ran steps holding both call sites' sequences, the
    prefill worker found the shared prompt prefix in its cache, and neither side holds a block or tensor."""
    split.driver.max_tokens = 64   # calls long enough that a request's second call overlaps another's first
    try:
        records = split.many([{"q": q} for q in QUESTIONS], requests=8, qps=4.0)   # staggered arrivals
    finally:
        split.driver.max_tokens = MAX_TOKENS
    assert [r.error for r in records] == [None] * 8
    health = split.workers.health()
    prefill, decode = health[_worker(split, "prefill")], health[_worker(split, "decode")]
    assert isinstance(prefill, dict) and isinstance(decode, dict)
    assert decode["batch_sites_peak"] == 2
    assert prefill["prefix_hit_tokens"] > 0
    for side in (prefill, decode):
        assert side["kv_blocks_free"] == side["kv_blocks"] and side["tensors_held"] == 0 and side["llm_running"] == 0


def test_killed_decode_worker_is_restarted_and_the_prefill_side_freed(split: LocalRun) -> None:
    """A decode worker killed between requests is restarted (a new process in its place); the next request's
    hand-off waits for it and goes over a new Gloo pair, and the prefill side keeps no block or tensor."""
    prefill, decode = _worker(split, "prefill"), _worker(split, "decode")
    old = split.workers.procs[decode]   # the supervisor puts the new process in its place
    old_pid = old.pid
    os.kill(old_pid, signal.SIGKILL)
    old.join(10)
    record = split.many([{"q": QUESTIONS[0]}], requests=1)[0]
    assert record.error is None, record.error
    assert split.workers.restarts[decode] == 1 and split.workers.procs[decode].pid != old_pid
    assert any(name == f"transfer {prefill}->{decode}" for name, _ in record.steps)
    answer = split.workers.health()[prefill]
    assert isinstance(answer, dict)
    assert answer["kv_blocks_free"] == answer["kv_blocks"] and answer["tensors_held"] == 0
    assert answer["llm_running"] == 0
