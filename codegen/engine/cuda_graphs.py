"""Decode steps replayed from CUDA graphs: one graph per (batch bucket, context bucket), static shapes.

Eager decode of small models on a GPU is launch-bound (../shared/calibration: llama-3.2-1b on an H200 took
5.0 ms a step eagerly against 1.35 ms graphed), so a decode-only step copies its inputs into static buffers
and replays a graph captured for the smallest bucket that holds it, as nano-vllm's ModelRunner does.
Shapes must be static inside a graph, and the engine's attention gathers each block table padded to the
longest context, so a graph is keyed by two buckets: the batch (1, 2, 4, 8, then steps of 16) and the
context in blocks (powers of two). Graphs are captured lazily on first use and share one memory pool.

Padding rows (a batch of 5 in the bucket of 8) must not touch real sequences' KV: they write their key and
read their context in one spare block past the block manager's range (the runner allocates it), with
context length 1, and their logits are dropped.

`mode="static"` runs the same padded static-shape step eagerly, on any device: the tests check the
padding on the CPU this way, where no graph can be captured.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from typing import Any

import torch

from plait.codegen.engine.model import AttentionPlan, Transformer

GraphKey = tuple[int, int]  # (batch bucket, context bucket in blocks)


def batch_buckets(max_batch: int) -> list[int]:
    """nano-vllm's ladder: 1, 2, 4, 8, then every 16 up to max_batch (max_batch itself always included)."""
    ladder = [b for b in (1, 2, 4, 8) if b < max_batch] + list(range(16, max_batch, 16))
    return ladder + [max_batch]


def block_buckets(max_blocks: int) -> list[int]:
    """Context buckets in blocks: powers of two up to max_blocks (itself included)."""
    ladder, b = [], 1
    while b < max_blocks:
        ladder.append(b)
        b *= 2
    return ladder + [max_blocks]


def bucket(ladder: list[int], n: int) -> int:
    return ladder[bisect.bisect_left(ladder, n)]


class DecodeGraphs:
    """Static buffers and the graphs of decode-only steps for one model runner.

    Args:
        model, kv_caches: the runner's; kv_caches hold one spare block at index `spare_block`.
        block_size, max_blocks: the cache's block size and the most blocks one sequence's table can hold.
        max_batch: the largest batch replayed from a graph (larger decode batches run eagerly).
        mode: "graph" (capture on CUDA, replay) or "static" (the same static shapes, run eagerly).
    """

    def __init__(self, model: Transformer, kv_caches: list[tuple[torch.Tensor, torch.Tensor]], block_size: int,
                 max_blocks: int, spare_block: int, max_batch: int, mode: str = "graph") -> None:
        if mode not in ("graph", "static"):
            raise ValueError(f"DecodeGraphs mode {mode!r} is not 'graph' or 'static'")
        device = kv_caches[0][0].device
        if mode == "graph" and device.type != "cuda":
            raise ValueError(f"CUDA graphs need a CUDA device; the KV cache is on {device}. "
                             "To fix: decode_graphs='eager' (or 'static' to test the static shapes)")
        self.model, self.kv_caches, self.block_size, self.mode = model, kv_caches, block_size, mode
        self.spare_block = spare_block
        self.batches, self.blocks = batch_buckets(max_batch), block_buckets(max_blocks)
        self.max_batch, self.max_blocks = max_batch, max_blocks
        b, n = max_batch, max_blocks
        self.input_ids = torch.zeros(b, dtype=torch.long, device=device)
        self.positions = torch.zeros(b, dtype=torch.long, device=device)
        self.slots = torch.zeros(b, dtype=torch.long, device=device)
        self.lengths = torch.ones(b, dtype=torch.long, device=device)
        self.tables = torch.full((b, n), spare_block, dtype=torch.long, device=device)
        self.rows = torch.arange(b, dtype=torch.long, device=device)
        self.graphs: dict[GraphKey, tuple[torch.cuda.CUDAGraph, torch.Tensor]] = {}
        self.pool: Any = None  # the first graph's memory pool, shared by every later capture
        self.steps = 0  # decode steps run through the buckets (replayed, or static-eager)
        self.captures = 0

    def fits(self, batch: int, blocks: int) -> bool:
        return batch <= self.max_batch and blocks <= self.max_blocks

    def _forward(self, batch: int, blocks: int) -> torch.Tensor:
        """The decode step over the static buffers' first `batch` rows and `blocks` context blocks."""
        lengths = self.lengths[:batch]
        mask = (torch.arange(blocks * self.block_size, device=lengths.device)[None, :]
                < lengths[:, None])[:, None, None, :]
        # No shared gather buffers: inside a graph each layer's gather comes from the graph's own pool, sized
        # for this bucket (buffers for the largest bucket would be batch x max context, gigabytes).
        plan = AttentionPlan(slot_mapping=self.slots[:batch], num_decodes=batch,
                             decode_blocks=self.tables[:batch, :blocks], decode_mask=mask, prefills=[])
        return self.model(self.input_ids[:batch], self.positions[:batch], plan, self.kv_caches, self.rows[:batch])

    def _graph(self, key: GraphKey) -> Callable[[], torch.Tensor]:
        if self.mode == "static":
            return lambda: self._forward(*key)
        if key not in self.graphs:
            self._forward(*key)  # warm-up outside the graph: cuBLAS and SDPA pick their kernels here
            torch.cuda.synchronize()
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, pool=self.pool):
                out = self._forward(*key)
            if self.pool is None:
                self.pool = graph.pool()
            self.graphs[key] = (graph, out)
            self.captures += 1
        graph, out = self.graphs[key]

        def replay() -> torch.Tensor:
            graph.replay()
            return out
        return replay

    @torch.inference_mode()
    def run(self, ids: list[int], positions: list[int], slots: list[int], tables: list[list[int]]) -> torch.Tensor:
        """Logits [batch, vocab] (float32) of one decode-only step; tables are the sequences' block tables."""
        batch = len(ids)
        need = max(-(-(p + 1) // self.block_size) for p in positions)
        key = (bucket(self.batches, batch), bucket(self.blocks, need))
        pad = key[0] - batch
        spare_slot = self.spare_block * self.block_size
        device = self.input_ids.device
        self.input_ids[:key[0]].copy_(torch.tensor(ids + [0] * pad))
        self.positions[:key[0]].copy_(torch.tensor(positions + [0] * pad))
        self.slots[:key[0]].copy_(torch.tensor(slots + [spare_slot] * pad))
        self.lengths[:key[0]].copy_(torch.tensor([p + 1 for p in positions] + [1] * pad))
        table = torch.full((key[0], key[1]), self.spare_block, dtype=torch.long)
        for row, t in enumerate(tables):
            used = t[:key[1]]
            table[row, :len(used)] = torch.tensor(used, dtype=torch.long)
        self.tables[:key[0], :key[1]].copy_(table.to(device))
        out = self._graph(key)()
        self.steps += 1
        # A copy: the next replay of any graph in the shared pool may overwrite the graph's output.
        return out[:batch].clone()
