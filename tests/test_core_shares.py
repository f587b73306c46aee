"""How the local runtime deals this machine's cores to its workers (scheduler.workers.core_shares)."""

from __future__ import annotations

import os

import pytest

from plait.scheduler.workers import WORK_WEIGHT, core_shares


@pytest.fixture
def two_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {4, 5}, raising=False)


def test_compute_workers_get_cores_of_their_own_before_light_ones_share(two_cores: None) -> None:
    """rag on 2 cores: encoder, search, LLM. Round-robin put the encoder and the LLM on one core; dealing by work
    gives each engine its own core and puts the short search beside one of them."""
    kinds = ["encoder", "search", "llm"]
    shares = core_shares([WORK_WEIGHT[k] for k in kinds])
    assert shares[0] != shares[2] and sorted(shares[0] + shares[2]) == [4, 5]
    assert len(shares[1]) == 1


def test_tools_share_the_core_the_llm_does_not_use(two_cores: None) -> None:
    kinds = ["tool", "tool", "llm", "tool", "tool"]
    shares = core_shares([WORK_WEIGHT[k] for k in kinds])
    llm_core = shares[2]
    assert all(shares[i] != llm_core for i in (0, 1, 3, 4))


def test_more_cores_than_workers_go_to_the_heaviest_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    shares = core_shares([WORK_WEIGHT["tool"], WORK_WEIGHT["llm"]])
    assert len(shares[1]) == 2 and len(shares[0]) == 1 and sorted(shares[0] + shares[1]) == [0, 1, 2]
