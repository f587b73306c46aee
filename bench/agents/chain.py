"""A chain of no-op tool steps alternating between two tools, for bench/dispatch_hop.py.

`chain100` is 100 steps: ping, pong, ping, ... Each step passes the previous one's value on, so the driver
waits for every answer before it sends the next call (one hop per step). `chain10` is the same at 10 steps
(the benchmark's test).
"""

from __future__ import annotations

import plait


@plait.tool(latency_ms=0.01)
def ping(x: int) -> int:
    """No work: the value back, plus one (so a lost or repeated step shows in the result)."""
    return x + 1


@plait.tool(latency_ms=0.01)
def pong(x: int) -> int:
    """The same no-op as ping, as its own tool, so the planner gives it its own pool."""
    return x + 1


def _chain(x: plait.Sym, hops: int) -> plait.Sym:
    for i in range(hops):   # traced: `hops` tool nodes in a line
        x = ping(x) if i % 2 == 0 else pong(x)
    return x


@plait.agent(sla=plait.SLA(p95_ms=1000), qps=1)
def chain100(x: int) -> int:
    return _chain(x, 100)


@plait.agent(sla=plait.SLA(p95_ms=1000), qps=1)
def chain10(x: int) -> int:
    return _chain(x, 10)
