"""Tools for bench/transfer_throughput.py: a tensor made on one worker and read on another (plait's transfer
path moves it), and raw torch.distributed send/recv between the same two worker processes.

The bench plans `pair` so that `make` and `raw_send` share one pool and `received` and `raw_recv` the other
(bench/_runtime_common.plan_grouped), and calls the steps itself; the agent only declares them.
"""

from __future__ import annotations

import time
from typing import Any

import plait


@plait.tool(latency_ms=0.1)
def make(nbytes: int) -> Any:
    """`nbytes` bytes as a uint8 tensor: it stays on this worker; the driver gets its shape and dtype."""
    import torch

    return torch.ones(nbytes, dtype=torch.uint8)


@plait.tool(latency_ms=0.1)
def received(tensor: Any) -> int:
    """The bytes of a tensor that arrived here (checks a transfer delivered all of it)."""
    return int(tensor.numel() * tensor.element_size())


def _group(port: int, rank: int) -> Any:
    """This process's default torch.distributed group (Gloo, two ranks), made once on the bench's TCPStore."""
    import torch.distributed as dist

    if not dist.is_initialized():
        store = dist.TCPStore("127.0.0.1", port, is_master=False)
        dist.init_process_group("gloo", store=dist.PrefixStore("raw/", store), rank=rank, world_size=2)
    return dist


_BUFFERS: dict[int, Any] = {}   # nbytes -> this process's buffer of that size (raw's best case: made once)


def _buffer(nbytes: int, fill: int) -> Any:
    import torch

    if nbytes not in _BUFFERS:
        _BUFFERS.clear()
        _BUFFERS[nbytes] = torch.full((nbytes,), fill, dtype=torch.uint8)
    return _BUFFERS[nbytes]


@plait.tool(latency_ms=1000, timeout_s=600)
def raw_send(port: int, nbytes: int, reps: int) -> int:
    """Rank 0: after a barrier each time, send `nbytes` to rank 1, `reps` times."""
    dist = _group(port, 0)
    tensor = _buffer(nbytes, 1)
    for _ in range(reps):
        dist.barrier()
        dist.send(tensor, 1)
    return reps


@plait.tool(latency_ms=1000, timeout_s=600)
def raw_recv(port: int, nbytes: int, reps: int) -> list[float]:
    """Rank 1: the seconds of each of `reps` receives of `nbytes` (into one buffer kept across calls: raw's
    best case), each timed from the barrier both ranks leave together to the receive's end."""
    dist = _group(port, 1)
    tensor = _buffer(nbytes, 0)
    seconds = []
    for _ in range(reps):
        tensor[-1] = 0
        dist.barrier()
        start = time.perf_counter()
        dist.recv(tensor, 0)
        seconds.append(time.perf_counter() - start)
        if int(tensor[-1]) != 1:
            raise RuntimeError("raw_recv: the data did not arrive")
    return seconds


@plait.tool(latency_ms=0.1)
def summary(got: int, sent: int, seconds: list[float]) -> dict[str, Any]:
    return {"received": got, "raw_sent": sent, "raw_seconds": seconds}


@plait.agent(sla=plait.SLA(p95_ms=60000), qps=0.1)
def pair(nbytes: int, port: int, reps: int) -> dict[str, Any]:
    return summary(received(make(nbytes)), raw_send(port, nbytes, reps), raw_recv(port, nbytes, reps))
