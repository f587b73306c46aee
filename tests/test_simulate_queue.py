"""The simulator's queue core against queueing theory: M/D/1 and M/M/c mean waits over 200k arrivals (exact
formulas, 3 %), Little's law, edf order, and a link's bandwidth shared by the transfers in flight."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence

import pytest
import simpy

from plait.planner.simulate.link import Link
from plait.planner.simulate.metrics import PoolMeter
from plait.planner.simulate.queues import BatchServers, Job, WaitQueue

ARRIVALS = 200_000


def _run(lam: float, servers: int, service: Callable[[Sequence[Job]], float], size: Callable[[], float],
         seed: int) -> tuple[PoolMeter, float, float]:
    """Poisson arrivals at `lam` into `servers` replicas of the batch core (batch 1); (meter, horizon, wall s)."""
    rng = random.Random(seed)
    env = simpy.Environment()
    meter = PoolMeter("q", "test", "none", servers)
    pool = BatchServers(env, servers, 1, service, meter)

    def source() -> simpy.events.ProcessGenerator:
        for _ in range(ARRIVALS):
            yield env.timeout(rng.expovariate(lam))
            pool.submit(Job(size=size()))

    started = time.perf_counter()
    env.process(source())
    env.run()
    return meter, env.now, time.perf_counter() - started


def erlang_c(c: int, a: float) -> float:
    """Probability that an arrival waits in M/M/c with offered load a = lam/mu (< c)."""
    head = sum(a ** k / math.factorial(k) for k in range(c))
    tail = a ** c / math.factorial(c) * c / (c - a)
    return tail / (head + tail)


def test_md1_mean_wait_matches_pollaczek_khinchine() -> None:
    lam, d = 0.7, 1.0                                  # rho = 0.7
    meter, horizon, wall = _run(lam, 1, lambda jobs: d, lambda: 0.0, seed=11)
    exact = lam * d * d / (2 * (1 - lam * d))          # M/D/1: Wq = lam S^2 / (2 (1 - rho))
    simulated = sum(meter.waits) / len(meter.waits)
    assert len(meter.waits) == ARRIVALS
    assert simulated == pytest.approx(exact, rel=0.03)
    assert meter.stats(horizon).utilization == pytest.approx(lam * d, rel=0.01)
    assert wall < 30, f"the queue core took {wall:.1f} s for {ARRIVALS} arrivals"


def test_mmc_mean_wait_matches_erlang_c() -> None:
    c, lam, mu = 3, 2.1, 1.0                           # rho = 0.7 per server
    rng = random.Random(5)
    meter, _horizon, _wall = _run(lam, c, lambda jobs: jobs[0].size, lambda: rng.expovariate(mu), seed=12)
    exact = erlang_c(c, lam / mu) / (c * mu - lam)     # M/M/c: Wq = C(c, a) / (c mu - lam)
    simulated = sum(meter.waits) / len(meter.waits)
    assert simulated == pytest.approx(exact, rel=0.03)


def test_littles_law_holds_on_the_queue_core() -> None:
    rng = random.Random(3)
    meter, horizon, _ = _run(0.8, 2, lambda jobs: jobs[0].size, lambda: rng.expovariate(0.5), seed=4)
    stats = meter.stats(horizon)
    assert stats.jobs == ARRIVALS and meter.n_in == 0
    assert stats.littles_l == pytest.approx(stats.littles_lambda_w, rel=1e-6)
    assert stats.littles_l == pytest.approx(0.8 * (stats.wait.mean + 2.0), rel=0.02)   # L = lam (Wq + S)


def test_batches_take_what_waits_up_to_the_batch() -> None:
    env = simpy.Environment()
    meter = PoolMeter("b", "encoder", "none", 1)
    pool = BatchServers(env, 1, 4, lambda jobs: 1.0, meter)
    for _ in range(6):
        pool.submit(Job())
    env.run()
    # the first arrival starts alone; the other five wait, then go as 4 + 1
    assert (meter.executions, meter.max_batch, env.now) == (3, 4, 3.0)


def test_edf_serves_the_earliest_deadline_first_and_fifo_in_arrival_order() -> None:
    jobs = [Job(deadline=d) for d in (5.0, 1.0, 3.0, 1.0)]
    edf, fifo = WaitQueue("edf"), WaitQueue("fifo")
    for j in jobs:
        edf.push(j)
        fifo.push(j)
    assert [edf.pop() for _ in range(4)] == [jobs[1], jobs[3], jobs[2], jobs[0]]
    assert [fifo.pop() for _ in range(4)] == jobs


def test_a_link_shares_its_bandwidth_between_transfers_in_flight() -> None:
    env = simpy.Environment()
    link = Link(env, "a<->b", bandwidth=100.0, latency=0.5)
    ends: dict[str, float] = {}

    def send(name: str, at: float, nbytes: float) -> simpy.events.ProcessGenerator:
        yield env.timeout(at)
        yield link.send(nbytes)
        ends[name] = env.now

    env.process(send("a", 0.0, 100.0))   # alone for 0.5 s (50 bytes), then shares: 50 more at 50 B/s -> t = 1.5
    env.process(send("b", 0.5, 100.0))   # 50 bytes by 1.5, then alone: 50 at 100 B/s -> t = 2.0
    env.run()
    assert ends == pytest.approx({"a": 1.5 + 0.5, "b": 2.0 + 0.5})
