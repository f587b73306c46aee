"""Queueing at a stage: Erlang C values, the M/D/c approximation against a simulated M/D/1, enumeration."""

from __future__ import annotations

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


def test_vectorized_table_matches_scalar() -> None:
    rng = np.random.default_rng(1)
    lam, mu = rng.uniform(0, 40, 50), rng.uniform(0.5, 10, 50)
    r0 = np.maximum(np.ceil(lam / (mu * 0.85)), 1).astype(np.int64)
    r, (w95,) = wait_quantiles_table(lam, mu, r0, 3, (0.95,))
    for i in range(50):
        for j in range(4):
            assert w95[i, j] == pytest.approx(wait_quantile(0.95, int(r[i, j]), lam[i], mu[i]), abs=1e-12)


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
