"""Queueing at a stage: Erlang C values, the M/G/c approximation against simulated FIFO queues, enumeration."""

from __future__ import annotations

import heapq

import numpy as np
import pytest

from plait.planner.placement import SLA, Candidate, PlacementProblem, SolveOptions, Stage
from plait.planner.placement.options import enumerate_options
from plait.planner.placement.queueing import erlang_c, wait_quantile, wait_quantiles_table


def test_erlang_c_known_values() -> None:
    assert erlang_c(1, 0.5) == pytest.approx(0.5)  # M/M/1: P(wait) = rho
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3)
    assert erlang_c(3, 3.5) == 1.0 and erlang_c(4, 0.0) == 0.0


def _md1_waits(rho: float, n: int = 100_000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    gaps = rng.exponential(1 / rho, n)
    w, out = 0.0, np.empty(n)
    for i in range(n):  # Lindley: W' = max(0, W + D - A), D = 1
        out[i] = w
        w = max(0.0, w + 1.0 - gaps[i])
    return out[1000:]


@pytest.mark.parametrize("rho", [0.5, 0.85])
def test_md1_p95_is_close_and_conservative(rho: float) -> None:
    sim = float(np.quantile(_md1_waits(rho), 0.95))
    approx = wait_quantile(0.95, 1, rho, 1.0)
    assert sim * 0.97 <= approx <= sim * 1.2


def _mgc_waits(c: int, rho: float, cs: float, n: int = 80_000, seed: int = 0) -> np.ndarray:
    """FIFO waits of an M/G/c queue (service mean 1, gamma with coefficient of variation cs)."""
    rng = np.random.default_rng(seed)
    arrivals = np.cumsum(rng.exponential(1 / (rho * c), n))
    service = np.ones(n) if cs == 0 else rng.gamma(1 / cs**2, cs**2, n)
    free, out = [0.0] * c, np.empty(n)
    for i in range(n):  # the next free server takes the next arrival (Kiefer-Wolfowitz)
        start = max(heapq.heappop(free), arrivals[i])
        out[i] = start - arrivals[i]
        heapq.heappush(free, start + service[i])
    return out[2000:]


@pytest.mark.parametrize(("c", "rho", "cs"), [(3, 0.5, 0.0), (3, 0.85, 0.0), (8, 0.7, 0.0), (16, 0.7, 0.0),
                                              (16, 0.85, 0.0), (8, 0.7, 0.6), (32, 0.85, 0.3)])
def test_multi_server_p95_is_not_low(c: int, rho: float, cs: float) -> None:
    """Without Cosmetatos's correction the M/D/c p95 wait was 12-28 % low for 3 to 16 servers."""
    waits = _mgc_waits(c, rho, cs)
    sim_wait, sim_sojourn = float(np.quantile(waits, 0.95)), float(np.quantile(waits + 1.0, 0.95))
    approx = wait_quantile(0.95, c, rho * c, 1.0, cs2=cs * cs)
    assert sim_wait * 0.92 <= approx <= sim_wait * 1.3 + 0.02
    assert sim_sojourn * 0.97 <= approx + 1.0 <= sim_sojourn * 1.35


def test_vectorized_table_matches_scalar() -> None:
    rng = np.random.default_rng(1)
    lam, mu = rng.uniform(0, 40, 50), rng.uniform(0.5, 10, 50)
    r0 = np.maximum(np.ceil(lam / (mu * 0.85)), 1).astype(np.int64)
    cs2 = rng.uniform(0, 0.5, 50)
    r, (w95,) = wait_quantiles_table(lam, mu, r0, 3, (0.95,), cs2=cs2)
    for i in range(50):
        for j in range(4):
            want = wait_quantile(0.95, int(r[i, j]), lam[i], mu[i], cs2=float(cs2[i]))
            assert w95[i, j] == pytest.approx(want, rel=1e-9, abs=1e-12)


def test_enumeration_starts_stable_and_prunes_exactly() -> None:
    cands = [Candidate(device="gpu", latency_s=0.05, throughput=20, price_per_hour=2.0),
             Candidate(device="gpu", latency_s=0.08, throughput=12, price_per_hour=2.0),  # dominated
             Candidate(device="cpu", latency_s=0.2, throughput=5, price_per_hour=0.5)]
    p = PlacementProblem(stages=[Stage(name="a", candidates=cands, visits=2.0)], qps=30, sla=SLA(p95_s=1))
    full = enumerate_options(p, SolveOptions(prune=False)).stages[0]
    kept = enumerate_options(p, SolveOptions()).stages[0]
    assert (full.util <= 0.85 + 1e-12).all()
    assert int(full.replicas[full.cand == 0].min()) == 4  # 60 exec/s / (20 * 0.85) -> 4 replicas
    assert set(kept.cand.tolist()) == {0, 2}
    for k in range(len(full)):  # every dropped pair has a kept pair at most as costly and as slow
        assert any(kept.cost[j] <= full.cost[k] and kept.d95[j] <= full.d95[k] for j in range(len(kept)))
