"""What the simulation records: per-pool meters (waits, batches, busy time, Little's law) and percentiles."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from plait.planner.simulate.spec import Percentiles, PoolStats


def percentiles(xs: Sequence[float]) -> Percentiles:
    """p50/p95/p99 and mean of `xs` (all 0 for an empty sample)."""
    if not xs:
        return Percentiles(n=0, mean=0.0, p50=0.0, p95=0.0, p99=0.0)
    a = np.asarray(xs, dtype=float)
    p50, p95, p99 = np.percentile(a, [50, 95, 99])
    return Percentiles(n=len(a), mean=float(a.mean()), p50=float(p50), p95=float(p95), p99=float(p99))


class PoolMeter:
    """Counters of one pool. Two bookkeeping paths meet in Little's law: the area under the number of jobs
    in the pool (updated at every arrival and departure) and the sum of each job's own time in the pool."""

    __slots__ = ("area", "busy", "batch_sum", "device", "executions", "id", "jobs", "kind", "last", "max_batch",
                 "n_in", "preemptions", "replicas", "sojourn_sum", "waits")

    def __init__(self, pool_id: str, kind: str, device: str, replicas: int):
        self.id, self.kind, self.device, self.replicas = pool_id, kind, device, replicas
        self.area = self.busy = self.batch_sum = self.sojourn_sum = self.last = 0.0
        self.executions = self.jobs = self.max_batch = self.n_in = self.preemptions = 0
        self.waits: list[float] = []

    def arrive(self, now: float) -> None:
        self.area += self.n_in * (now - self.last)
        self.last = now
        self.n_in += 1
        self.jobs += 1

    def leave(self, now: float, sojourn: float) -> None:
        self.area += self.n_in * (now - self.last)
        self.last = now
        self.n_in -= 1
        self.sojourn_sum += sojourn

    def execution(self, size: int, seconds: float, count: int = 1) -> None:
        """`count` executions of `size` items, `seconds` in all."""
        self.executions += count
        self.batch_sum += size * count
        self.busy += seconds
        if size > self.max_batch:
            self.max_batch = size

    def stats(self, horizon: float) -> PoolStats:
        """The pool's figures over [0, horizon] (every job has left by then)."""
        self.area += self.n_in * (horizon - self.last)
        self.last = horizon
        t = max(horizon, 1e-12)
        return PoolStats(id=self.id, kind=self.kind, device=self.device, replicas=self.replicas,
                         executions=self.executions, jobs=self.jobs,
                         utilization=self.busy / (self.replicas * t), wait=percentiles(self.waits),
                         mean_batch=self.batch_sum / self.executions if self.executions else 0.0,
                         max_batch=self.max_batch, preemptions=self.preemptions,
                         littles_l=self.area / t, littles_lambda_w=(self.jobs / t) * (self.sojourn_sum / max(self.jobs, 1)))
