"""Which sequences run in the next step, and how many of their tokens: continuous batching, chunked prefill, preemption.

Each step carries every running sequence's next tokens (one for a decode, a chunk for a prompt still
being computed) up to a token budget, then admits waiting sequences FIFO while blocks, batch slots
and budget last. When a running sequence needs a block and none is free, the newest running
sequence is preempted: its blocks are freed and it waits at the head of the queue to be recomputed.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from plait.codegen.engine.block_manager import BlockManager
from plait.codegen.engine.sequence import Sequence, SequenceStatus


@dataclass(frozen=True)
class ScheduledChunk:
    seq: Sequence
    num_tokens: int  # tokens to compute this step, starting at seq.num_computed_tokens


class Scheduler:
    def __init__(self, block_manager: BlockManager, max_batch: int, token_budget: int) -> None:
        if token_budget < max_batch:
            raise ValueError(f"token_budget={token_budget} is below max_batch={max_batch}: a full batch of "
                             "decodes would not fit in one step. To fix: raise token_budget or lower max_batch")
        self.blocks = block_manager
        self.max_batch = max_batch
        self.token_budget = token_budget
        self.waiting: deque[Sequence] = deque()
        self.running: list[Sequence] = []
        self.preemptions = 0
        self.prefix_hit_tokens = 0

    def add(self, seq: Sequence) -> None:
        self.waiting.append(seq)

    def has_work(self) -> bool:
        return bool(self.waiting or self.running)

    def schedule(self) -> list[ScheduledChunk]:
        budget = self.token_budget
        chunks: list[ScheduledChunk] = []
        preempted = False
        index = 0
        while index < len(self.running) and budget > 0:
            seq = self.running[index]
            count = min(seq.num_tokens - seq.num_computed_tokens, budget)
            while not self.blocks.try_grow_to(seq, seq.num_computed_tokens + count):
                self._preempt(self.running.pop())  # the newest running sequence
                preempted = True
                if index >= len(self.running):  # seq itself was the newest
                    break
            else:
                chunks.append(ScheduledChunk(seq, count))
                budget -= count
                index += 1
        # Admitting right after a preemption would only take back the blocks just freed.
        while self.waiting and not preempted and budget > 0 and len(self.running) < self.max_batch:
            seq = self.waiting[0]
            hits = [] if seq.pending_kv is not None else self.blocks.prefix_hits(seq)
            if not self.blocks.can_allocate(seq, hits):
                break
            self.waiting.popleft()
            self.blocks.allocate(seq, hits)
            self.prefix_hit_tokens += seq.num_computed_tokens
            if seq.pending_kv is not None:  # imported: the runner writes its KV, then it decodes
                seq.num_computed_tokens = seq.pending_kv["k"].shape[1]
            seq.status = SequenceStatus.RUNNING
            # Tokens below this are prompt (or recomputed after a preemption), counted as prefill.
            seq.prefill_target = seq.num_tokens if seq.pending_kv is None else seq.num_computed_tokens
            self.running.append(seq)
            count = min(seq.num_tokens - seq.num_computed_tokens, budget)
            chunks.append(ScheduledChunk(seq, count))
            budget -= count
        return chunks

    def _preempt(self, seq: Sequence) -> None:
        self.blocks.free_sequence(seq)
        seq.status = SequenceStatus.WAITING
        self.waiting.appendleft(seq)
        self.preemptions += 1

    def retire(self, seq: Sequence, status: SequenceStatus) -> None:
        """Take seq out of the batch; FINISHED frees its blocks, PARKED keeps them for export."""
        self.running.remove(seq)
        seq.status = status
        if status is SequenceStatus.FINISHED:
            self.blocks.free_sequence(seq)
