"""Receive buffers a worker reuses: the memory of received tensors nobody references any more.

A fresh tensor's pages are faulted in (and zeroed by the kernel) as the transfer writes them: ~0.3 ms per MB
on these machines, which halved the throughput of a 256 MB Gloo receive (bench/transfer_throughput.py). The
worker gives a received tensor back when the driver releases its request; it is kept only when nothing but
the worker holds it (no other Python reference, no view sharing its storage), so a reused buffer is never
memory anyone can still read. At most `limit_bytes` are kept, the oldest dropped first. Thread-safe: transfer
threads take, the main loop gives.
"""

from __future__ import annotations

import sys
import threading
from collections import OrderedDict
from typing import Any

LIMIT_BYTES = 512 << 20


class RecvBuffers:
    """Storages of released received tensors, by size in bytes, ready for the next receive of that size."""

    def __init__(self, limit_bytes: int = LIMIT_BYTES) -> None:
        self.limit_bytes = limit_bytes
        self.kept: OrderedDict[int, list[Any]] = OrderedDict()   # nbytes -> untyped storages, oldest size first
        self.bytes = 0
        self.lock = threading.Lock()

    def take(self, shape: list[int], dtype: Any) -> Any:
        """An uninitialised tensor of `shape` and `dtype`: on a kept storage of its size, else a new one."""
        import torch

        tensor = torch.empty(0, dtype=dtype)
        nbytes = tensor.element_size() * _numel(shape)
        with self.lock:
            storages = self.kept.get(nbytes)
            if not storages:
                return torch.empty(shape, dtype=dtype)
            storage = storages.pop()
            if not storages:
                del self.kept[nbytes]
            self.bytes -= nbytes
        return tensor.set_(storage, 0, shape, _strides(shape))

    def give(self, tensor: Any) -> bool:
        """Keep `tensor`'s storage for reuse if the caller's reference is the only one left (True if kept).

        The caller must hold `tensor` in one local variable only: that and this call's argument are the two
        references sys.getrefcount sees when nobody else has it."""
        import torch

        if sys.getrefcount(tensor) > 3 or not isinstance(tensor, torch.Tensor) or tensor.device.type != "cpu":
            return False   # 3: the caller's variable, this parameter, getrefcount's argument
        storage = tensor.untyped_storage()
        nbytes = storage.nbytes()
        # 2: the tensor's own and the temporary `storage` object; more means a view elsewhere shares the memory
        if torch._C._storage_Use_Count(storage._cdata) > 2 or nbytes == 0 or nbytes > self.limit_bytes:
            return False
        with self.lock:
            while self.bytes + nbytes > self.limit_bytes:
                size, storages = next(iter(self.kept.items()))
                storages.pop(0)
                self.bytes -= size
                if not storages:
                    del self.kept[size]
            self.kept.setdefault(nbytes, []).append(storage)
            self.kept.move_to_end(nbytes)
            self.bytes += nbytes
        return True


def _strides(shape: list[int]) -> list[int]:
    """Row-major (contiguous) strides of `shape`, in elements."""
    out, step = [], 1
    for d in reversed(shape):
        out.append(step)
        step *= max(d, 1)
    return out[::-1]


def _numel(shape: list[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n
