"""Which sequences run in the next step, and how many of their tokens: continuous batching, chunked prefill, preemption.

Each step carries the decode of every running sequence plus up to a token budget of prompt tokens
(DESIGN.md, "The serving model"): chunks of prompts still being computed, oldest first, then the
prompts of waiting sequences admitted first in, first out while blocks, batch slots and budget last (or earliest
deadline first among sequences that carry one: `plait serve --policy edf`, as `plait simulate --policy edf` models
it; a sequence without one waits behind those with one, and equal deadlines keep their order).
When a decode needs a block and none is free, the newest running sequence is preempted: its blocks
are freed and it waits at the head of the queue to be recomputed.
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
        self.blocks = block_manager
        self.max_batch = max_batch
        self.token_budget = token_budget  # prompt tokens per step; decodes come on top
        self.waiting: deque[Sequence] = deque()
        self.running: list[Sequence] = []
        self.preemptions = 0
        self.prefix_hit_tokens = 0

    def add(self, seq: Sequence) -> None:
        if seq.deadline is None:
            self.waiting.append(seq)
            return
        for index, other in enumerate(self.waiting):   # before the first that is due later (or has no deadline)
            if other.deadline is None or other.deadline > seq.deadline:
                self.waiting.insert(index, seq)
                return
        self.waiting.append(seq)

    def has_work(self) -> bool:
        return bool(self.waiting or self.running)

    def schedule(self) -> list[ScheduledChunk]:
        chunks: list[ScheduledChunk] = []
        preempted = self._schedule_decodes(chunks)
        budget = self.token_budget
        for seq in self.running:
            remaining = seq.num_tokens - seq.num_computed_tokens
            if remaining > 1 and budget > 0:  # a prompt still being computed (its blocks came at admission)
                chunks.append(ScheduledChunk(seq, min(remaining, budget)))
                budget -= chunks[-1].num_tokens
        # Admitting right after a preemption would only take back the blocks just freed.
        while self.waiting and not preempted and len(self.running) < self.max_batch:
            seq = self.waiting[0]
            imported = seq.pending_kv is not None
            if budget == 0 and not imported:
                break
            hits = [] if imported else self.blocks.prefix_hits(seq)
            if not self.blocks.can_allocate(seq, hits):
                break
            self.waiting.popleft()
            self.blocks.allocate(seq, hits)
            self.prefix_hit_tokens += seq.num_computed_tokens
            if seq.pending_kv is not None:  # imported: the runner writes its KV, then it decodes
                seq.num_computed_tokens = seq.pending_kv["k"].shape[1]
            seq.status = SequenceStatus.RUNNING
            # Tokens below this are prompt (or recomputed after a preemption), counted as prefill.
            seq.prefill_target = seq.num_tokens if not imported else seq.num_computed_tokens
            self.running.append(seq)
            count = seq.num_tokens - seq.num_computed_tokens
            if not imported:
                count = min(count, budget)
                budget -= count
            chunks.append(ScheduledChunk(seq, count))
        return chunks

    def _schedule_decodes(self, chunks: list[ScheduledChunk]) -> bool:
        """Every running sequence with one token to compute, growing its blocks; True if any was preempted."""
        preempted = False
        index = 0
        while index < len(self.running):
            seq = self.running[index]
            if seq.num_tokens - seq.num_computed_tokens != 1:
                index += 1
                continue
            while not self.blocks.try_grow_to(seq, seq.num_tokens):
                self._preempt(self.running.pop())  # the newest running sequence
                preempted = True
                if index >= len(self.running):  # seq itself was the newest
                    break
            else:
                chunks.append(ScheduledChunk(seq, 1))
                index += 1
        return preempted

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
