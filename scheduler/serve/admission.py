"""Admission of requests to a server: at most `slots` run at once and at most `max_queue` wait for a slot;
the waiting ones get slots first-in first-out or earliest-deadline-first (`--policy edf`), as the planner
and `plait simulate` order a pool's queue. Past the bound a request is refused (HTTP 503), not queued.

Runs on the server's event loop only (no locks): acquire() and release() are called from that one thread.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from dataclasses import dataclass, field

POLICIES = ("fifo", "edf")


class QueueFull(Exception):
    """Every slot is taken and `max_queue` requests already wait."""


@dataclass(order=True)
class _Waiter:
    key: tuple[float, int]
    future: asyncio.Future[None] = field(compare=False)


class Admission:
    def __init__(self, slots: int, max_queue: int, policy: str = "fifo") -> None:
        if policy not in POLICIES:
            raise ValueError(f"policy {policy!r} is not one of {POLICIES}")
        if slots < 1 or max_queue < 0:
            raise ValueError(f"need slots >= 1 and max_queue >= 0, got {slots} and {max_queue}")
        self.slots, self.max_queue, self.policy = slots, max_queue, policy
        self.running = 0
        self._heap: list[_Waiter] = []
        self._order = itertools.count()

    @property
    def waiting(self) -> int:
        return sum(1 for w in self._heap if not w.future.done())

    async def acquire(self, deadline: float) -> None:
        """Take a slot, waiting in policy order (`deadline` is the request's, on the loop's clock: EDF's key).

        Raises QueueFull when the queue is full; a caller that stops waiting (asyncio.wait_for at its deadline,
        a disconnect) leaves the queue, and a slot handed to it in that instant goes back."""
        if self.running < self.slots and self.waiting == 0:
            self.running += 1
            return
        if self.waiting >= self.max_queue:
            raise QueueFull
        waiter = _Waiter((deadline if self.policy == "edf" else 0.0, next(self._order)),
                         asyncio.get_running_loop().create_future())
        heapq.heappush(self._heap, waiter)
        try:
            await waiter.future
        except asyncio.CancelledError:
            if waiter.future.done() and not waiter.future.cancelled():
                self.release()   # the slot came as the caller gave up: hand it on
            raise

    def release(self) -> None:
        """A request finished: its slot goes to the next waiter in policy order, or back to the free slots."""
        while self._heap:
            waiter = heapq.heappop(self._heap)
            if not waiter.future.done():   # skip the ones that gave up
                waiter.future.set_result(None)
                return
        self.running -= 1
