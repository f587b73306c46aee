"""The queue core: a wait queue (fifo or edf) and replicas that serve batches of jobs (encoders, searches,
tool workers, split prefill pools). Callbacks, not processes: about three SimPy events per job."""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import simpy

from plait.planner.simulate.metrics import PoolMeter


class Job:
    """One call waiting for or in a pool: its deadline orders edf queues; `size` is what the service reads."""

    __slots__ = ("deadline", "done", "enqueued", "payload", "size")

    def __init__(self, size: float = 0.0, deadline: float = 0.0, payload: Any = None):
        self.size, self.deadline, self.payload = size, deadline, payload
        self.enqueued = 0.0
        self.done: simpy.Event | None = None


class WaitQueue:
    """Jobs waiting for service: first in first out, or earliest deadline first (ties in arrival order)."""

    def __init__(self, policy: str = "fifo"):
        self.edf = policy == "edf"
        self._fifo: deque[Job] = deque()
        self._heap: list[tuple[float, int, Job]] = []
        self._count = itertools.count()

    def push(self, job: Job) -> None:
        if self.edf:
            heapq.heappush(self._heap, (job.deadline, next(self._count), job))
        else:
            self._fifo.append(job)

    def push_front(self, job: Job) -> None:
        """Back to the head (a preempted sequence); under edf its deadline places it."""
        if self.edf:
            heapq.heappush(self._heap, (job.deadline, -next(self._count), job))
        else:
            self._fifo.appendleft(job)

    def peek(self) -> Job:
        return self._heap[0][2] if self.edf else self._fifo[0]

    def pop(self) -> Job:
        return heapq.heappop(self._heap)[2] if self.edf else self._fifo.popleft()

    def __len__(self) -> int:
        return len(self._heap) if self.edf else len(self._fifo)


Service = Callable[[Sequence[Job]], float]
"""Seconds one replica takes to serve a batch of jobs (the cost model's figure for that batch)."""


class BatchServers:
    """`servers` replicas, each serving up to `batch` waiting jobs at once; a replica takes whatever is waiting
    (up to `batch`) as soon as it is free, and the batch takes `service(jobs)` seconds."""

    def __init__(self, env: simpy.Environment, servers: int, batch: int, service: Service, meter: PoolMeter,
                 policy: str = "fifo"):
        self.env, self.batch, self.service, self.meter = env, batch, service, meter
        self.free = servers
        self.queue = WaitQueue(policy)

    def submit(self, job: Job) -> simpy.Event:
        """Queue `job`; the returned event fires when its batch finishes."""
        job.done = self.env.event()
        job.enqueued = self.env.now
        self.meter.arrive(job.enqueued)
        self.queue.push(job)
        if self.free:
            self._dispatch()
        return job.done

    def _dispatch(self) -> None:
        env, queue, meter = self.env, self.queue, self.meter
        while self.free and len(queue):
            jobs = [queue.pop() for _ in range(min(self.batch, len(queue)))]
            self.free -= 1
            now = env.now
            for j in jobs:
                meter.waits.append(now - j.enqueued)
            seconds = self.service(jobs)
            meter.execution(len(jobs), seconds)
            env.timeout(seconds).callbacks.append(partial(self._finish, jobs))

    def _finish(self, jobs: list[Job], _event: simpy.Event) -> None:
        now = self.env.now
        self.free += 1
        for j in jobs:
            self.meter.leave(now, now - j.enqueued)
            assert j.done is not None
            j.done.succeed()
        self._dispatch()
