"""A link between two device types: every transfer in flight shares its bandwidth equally (processor sharing)."""

from __future__ import annotations

from functools import partial

import simpy


def _fire(done: simpy.Event, _event: simpy.Event) -> None:
    done.succeed()


class Link:
    """`bandwidth` bytes/s shared by the transfers in flight, plus `latency` s each.

    At each start or end of a transfer the remaining bytes of the others are advanced at the old share and
    the next completion is rescheduled; a stale wake-up is recognized by its version number and ignored.
    """

    def __init__(self, env: simpy.Environment, name: str, bandwidth: float, latency: float):
        self.env, self.name, self.bandwidth, self.latency = env, name, bandwidth, latency
        self.active: dict[simpy.Event, float] = {}
        self.last = 0.0
        self.version = 0
        self.bytes = 0.0
        self.busy = 0.0

    def send(self, nbytes: float) -> simpy.Event:
        """An event that fires when `nbytes` have crossed the link."""
        done = self.env.event()
        self.bytes += nbytes
        if nbytes <= 0:
            return self.env.timeout(self.latency)
        self._advance()
        self.active[done] = nbytes
        self._reschedule()
        return done

    def _advance(self) -> None:
        now = self.env.now
        if self.active:
            share = self.bandwidth * (now - self.last) / len(self.active)
            for ev in self.active:
                self.active[ev] -= share
            self.busy += now - self.last
        self.last = now

    def _reschedule(self) -> None:
        self.version += 1
        if self.active:
            first = min(self.active.values())
            dt = max(first, 0.0) * len(self.active) / self.bandwidth
            version = self.version
            self.env.timeout(dt).callbacks.append(partial(self._wake, version))

    def _wake(self, version: int, _event: simpy.Event) -> None:
        if version != self.version:
            return
        self._advance()
        # the wake-up was scheduled for the transfer with the fewest bytes left: it is done (rounding aside)
        least = min(self.active.values())
        done = [ev for ev, left in self.active.items() if left <= max(least, 0.0) + 1e-3]
        for ev in done:
            del self.active[ev]
            self.env.timeout(self.latency).callbacks.append(partial(_fire, ev))
        self._reschedule()
