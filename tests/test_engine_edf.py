"""`--policy edf` inside the engine: waiting sequences are admitted earliest deadline first (a sequence without a
deadline waits behind those with one; equal deadlines and no deadlines keep their arrival order), as `plait
simulate --policy edf` models it. Real engines (llama-3.1-8b@tiny on CPU) with one batch slot, so admission order
is completion order; and the worker's LLMCalls, which takes the deadline from the driver's Run message."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from plait.scheduler.messages import Run


def _finish_order(engine: Any, ids: dict[int, str]) -> list[str]:
    order: list[str] = []
    while engine.has_unfinished():
        order += [ids[o.request_id] for o in engine.step() if o.finished]
    return order


@pytest.fixture(scope="module")
def build() -> Any:
    from plait.codegen.llm import build_engine

    return lambda: build_engine("llama-3.1-8b@tiny", max_batch=1)


def test_the_engine_admits_earliest_deadline_first(build: Any) -> None:
    from plait.codegen.engine import SamplingParams

    engine = build()
    params = SamplingParams(max_tokens=3, ignore_eos=True)
    ids = {engine.add_request("first, running", params, deadline=50.0): "running"}
    engine.step()   # admitted: the one slot is taken, the rest wait
    for name, deadline in (("late", 30.0), ("none", None), ("soon", 10.0), ("mid", 20.0), ("mid2", 20.0),
                           ("none2", None)):
        ids[engine.add_request(f"call {name}", params, deadline=deadline)] = name
    assert _finish_order(engine, ids) == ["running", "soon", "mid", "mid2", "late", "none", "none2"]


def test_without_deadlines_the_engine_stays_fifo(build: Any) -> None:
    from plait.codegen.engine import SamplingParams

    engine = build()
    params = SamplingParams(max_tokens=3, ignore_eos=True)
    ids = {engine.add_request(f"call {n}", params): n for n in ("a", "b", "c", "d")}
    assert _finish_order(engine, ids) == ["a", "b", "c", "d"]


def test_llm_calls_pass_the_runs_deadline_to_the_engine(build: Any) -> None:
    """The driver's Run carries the request's deadline (plait serve --policy edf); a worker's calls are admitted
    by it."""
    from plait.scheduler.llm_calls import LLMCalls

    calls = LLMCalls(build(), SimpleNamespace(steps=[]), hold=lambda *a: None)   # no program steps: default sampling
    deadlines = {0: 400.0, 1: 100.0, 2: 300.0, 3: 200.0}
    for call, deadline in deadlines.items():
        calls.add(Run(call, request=call, kind="llm", target="llama-3.1-8b@tiny", loc="x.py:1", args=[f"call {call}"],
                      max_tokens=3, ignore_eos=True, deadline=deadline), [f"call {call}"])
    done: list[int] = []
    while calls.busy():
        done += [d.call for d in calls.step() if getattr(d, "value", None) is not None]
    assert done == [1, 3, 2, 0]   # by deadline (arrival order would be 0, 1, 2, 3)
