"""One request's executions that share a FIFO queue (queueing.turn_moments, queueing.batch_moments): a loop's
passes coming back to one tool replica, checked against a small event simulation of that queue; a map's elements
arriving at once, checked against the M^X/G/1 workload in closed form."""

from __future__ import annotations

import heapq
from collections import deque

import numpy as np
import pytest

from plait.planner.placement.queueing import batch_moments, turn_moments, wait_moments

Z95 = 1.6449


def _loop_at_one_server(lam: float, passes: int, mean_s: float, sd_s: float, requests: int, seed: int) -> np.ndarray:
    """Seconds each request spends at a single FIFO server it visits `passes` times in turn (back at the tail as
    soon as it leaves), Poisson arrivals at `lam` requests/s, normal service times."""
    rng = np.random.default_rng(seed)
    arrivals = np.cumsum(rng.exponential(1.0 / lam, requests))
    events = [(float(t), 0, i) for i, t in enumerate(arrivals)]   # (time, kind 0 arrive / 1 leave, request)
    heapq.heapify(events)
    queue: deque[int] = deque()
    left = [passes] * requests
    busy = False
    end = np.zeros(requests)
    while events:
        now, kind, i = heapq.heappop(events)
        if kind == 1:
            busy = False
            left[i] -= 1
            if left[i]:
                queue.append(i)
            else:
                end[i] = now
        else:
            queue.append(i)
        if not busy and queue:
            busy = True
            heapq.heappush(events, (now + max(rng.normal(mean_s, sd_s), 1e-4), 1, queue.popleft()))
    return (end - arrivals)[requests // 10:]


def test_a_loops_passes_at_one_server_wait_in_step() -> None:
    # three passes at a 40 +- 10 ms tool, utilization 0.63, each back at the tail at once: the passes' waits are
    # longer than a Poisson arrival's and move together. Counted independent, the p95 of their sum reads 0.57 of
    # the simulated one (383 against 678 ms); turn_moments reads 0.93 (631 ms) on this pure case, which has no gap
    # between passes and always three of them (the generated agent (0, 6), 2 or 3 passes and a check between:
    # 1.01, tests/test_generated_latency.py)
    lam, s, sd = 5.25, 0.040, 0.010
    simulated = float(np.quantile(_loop_at_one_server(lam, 3, s, sd, 30_000, seed=0), 0.95))
    cs2 = (sd / s) ** 2
    mean, var, excess = turn_moments(1, lam * 3, 1 / s, s, cs2, turns=3.0, n=3.0, gap_s=0.0)
    estimate = mean + max(Z95 * var ** 0.5, excess)
    w0, v0 = wait_moments(1, lam * 3, 1 / s, cs2)
    independent = 3 * (w0 + s) + Z95 * (3 * (v0 + cs2 * s * s)) ** 0.5
    assert 0.9 * simulated <= estimate <= 1.35 * simulated, (estimate, simulated)
    assert independent < 0.6 * simulated, (independent, simulated)


def test_passes_far_apart_are_independent() -> None:
    # a gap of many relaxation times between passes: each pass waits as a Poisson arrival, independently
    w0, v0 = wait_moments(2, 30.0, 20.0, 0.1)
    mean, var, _ = turn_moments(2, 30.0, 20.0, 0.05, 0.1, turns=3.0, n=3.0, gap_s=1e3)
    assert mean == pytest.approx(3 * (w0 + 0.05), rel=1e-6)
    assert var == pytest.approx(3 * (v0 + 0.1 * 0.05 ** 2), rel=1e-6)


def test_a_maps_elements_wait_once_for_the_batchs_workload() -> None:
    # M^X/G/1 with batches of K: the first of a batch waits for the workload lam_b E[(sum of K services)^2] /
    # (2 (1 - rho)); the last then runs after its K - 1 siblings
    lam_b, k, s, cs2 = 4.0, 5, 0.03, 0.09
    rho = lam_b * k * s
    workload = lam_b * (k * cs2 * s * s + k * k * s * s) / (2 * (1 - rho))
    mean, _, excess = batch_moments(1, lam_b * k, 1 / s, s, cs2, batch=k, turns=k, slowest=1.0)
    assert mean == pytest.approx(workload + k * s, rel=1e-9)
    assert excess > 0
