"""An LLM pool's replicas with the serving model's semantics (DESIGN.md, "The serving model").

Continuous batching: sequences join and leave the running batch at every step. The KV cache is paged:
admission takes the blocks for the context, decode takes a block each time a sequence crosses a block
boundary, and when none is free the newest sequence is preempted (its blocks freed, its KV recomputed when
it is admitted again). A unified replica runs, each step, the decode of the running batch plus up to
`prefill_chunk_tokens` prompt tokens (chunked prefill), and the step costs both. A decode replica of a split
pair admits sequences whose KV cache arrived from the prefill pool (the prefill made their first token).
"""

from __future__ import annotations

import math
from collections.abc import Generator
from typing import Any

import simpy

from plait.planner.plan import Pool
from plait.planner.simulate.errors import SimulateError
from plait.planner.simulate.metrics import PoolMeter
from plait.planner.simulate.queues import Job, WaitQueue
from plait.planner.simulate.service import Coster
from plait.planner.workload import OpSpec

DEFAULT_CHUNK = 512
MAX_RUN = 64
"""Most decode steps of an unchanged batch simulated as one wait (its cost taken at the run's middle context)."""


class Seq:
    """One LLM call's sequence: prompt and output lengths, progress, and the KV blocks it holds."""

    __slots__ = ("blocks", "decode_spec", "first", "generated", "job", "out", "pending", "prefill_spec", "prompt",
                 "admitted")

    def __init__(self, prompt: int, out: int, prefill_spec: OpSpec, decode_spec: OpSpec, job: Job):
        self.prompt, self.out = prompt, out
        self.prefill_spec, self.decode_spec, self.job = prefill_spec, decode_spec, job
        self.generated = 0          # tokens produced so far (the prefill makes the first)
        self.pending = prompt       # context tokens whose KV is still to compute (prefill, or recompute)
        self.blocks = 0
        self.first: float | None = None
        self.admitted = False


class Engine:
    """The replicas of one LLM pool (unified or decode role) around one shared wait queue."""

    def __init__(self, env: simpy.Environment, pool: Pool, coster: Coster, meter: PoolMeter, policy: str,
                 kv_blocks: int, block_tokens: int):
        self.env, self.pool, self.coster, self.meter = env, pool, coster, meter
        self.queue = WaitQueue(policy)
        self.kv_blocks, self.block_tokens = kv_blocks, block_tokens
        self.max_seqs = pool.max_sequences or 1_000_000
        self.chunk = (pool.prefill_chunk_tokens or DEFAULT_CHUNK) if pool.role == "unified" else 1 << 30
        self.replicas = [_Replica(self, i) for i in range(pool.replicas)]
        for r in self.replicas:
            env.process(r.run())

    def blocks_for(self, tokens: int) -> int:
        return max(1, math.ceil(tokens / self.block_tokens))

    def submit(self, seq: Seq) -> simpy.Event:
        """Queue a sequence; the event fires when its last token is generated."""
        job = seq.job
        job.done = self.env.event()
        job.enqueued = self.env.now
        self.meter.arrive(job.enqueued)
        self.queue.push(job)
        self.kick()
        return job.done

    def kick(self) -> None:
        for r in self.replicas:
            if r.wake is not None and not r.wake.triggered:
                r.wake.succeed()


class _Replica:
    def __init__(self, engine: Engine, index: int):
        self.e, self.index = engine, index
        self.free = engine.kv_blocks
        self.running: list[Seq] = []
        self.wake: simpy.Event | None = None

    def _admit(self) -> None:
        e, q = self.e, self.e.queue
        while len(q) and len(self.running) < e.max_seqs:
            seq: Seq = q.peek().payload
            need = e.blocks_for(seq.prompt + seq.generated + 1)
            if need > self.free:
                if not self.running and need > e.kv_blocks:
                    raise SimulateError(f"pool {e.pool.id!r}: a sequence of {seq.prompt + seq.generated + 1} tokens "
                                        f"needs {need} KV blocks of {e.block_tokens} tokens; a replica has "
                                        f"{e.kv_blocks}.\nTo fix: give the pool more kv_blocks (a larger device or "
                                        "tensor-parallel degree), or shorter prompts.")
                break
            q.pop()
            self.free -= need
            seq.blocks = need
            if not seq.admitted:
                seq.admitted = True
                e.meter.waits.append(e.env.now - seq.job.enqueued)
            self.running.append(seq)

    def run(self) -> Generator[simpy.Event, Any, None]:
        e, env, coster, pool = self.e, self.e.env, self.e.coster, self.e.pool
        while True:
            self._admit()
            if not self.running:
                self.wake = env.event()
                yield self.wake
                self.wake = None
                continue
            budget, seconds = e.chunk, 0.0
            chunks: list[tuple[Seq, int]] = []
            decoding: list[Seq] = []
            ctx = 0
            for s in self.running:
                if s.pending:
                    if budget > 0:
                        c = min(s.pending, budget)
                        chunks.append((s, c))
                        budget -= c
                else:
                    decoding.append(s)
                    ctx += s.prompt + s.generated
            if not chunks and (k := self._quiet_steps(decoding)) > 1:
                yield from self._decode_run(decoding, ctx / len(decoding), k)
                continue
            # one forward pass: with a batch decoding, the weights are read once and each chunk adds its
            # compute (the planner's step(B, c) = decode(B) + c x tau); alone, a chunk is a whole prefill
            for s, c in chunks:
                done = s.prompt + s.generated - s.pending
                cost = coster.prefill_compute if decoding else coster.prefill
                seconds += cost(pool, s.prefill_spec, done + c, cached=done)
            if decoding:
                seconds += coster.decode_step(pool, decoding[0].decode_spec, len(decoding), ctx / len(decoding))
            e.meter.execution(len(chunks) + len(decoding), seconds)
            yield env.timeout(seconds)
            self._after(chunks, decoding)

    def _quiet_steps(self, decoding: list[Seq]) -> int:
        """Steps this batch can run unchanged: no sequence finishes or needs a block before the last one, and
        nothing waiting could be admitted (a new arrival interrupts the run at the next step boundary)."""
        e, q = self.e, self.e.queue
        if len(q) and len(self.running) < e.max_seqs:
            head: Seq = q.peek().payload
            if e.blocks_for(head.prompt + head.generated + 1) <= self.free:
                return 1
        k = min(MAX_RUN, *(s.out - s.generated for s in decoding))
        extra = sum(e.blocks_for(s.prompt + s.generated + k + 1) - s.blocks for s in decoding)
        if extra <= self.free:       # the blocks the run grows into are free: taken at its end
            return k
        bt = e.block_tokens
        return min(k, *(max(1, s.blocks * bt - (s.prompt + s.generated) - 1) for s in decoding))

    def _decode_run(self, decoding: list[Seq], ctx: float, k: int) -> Generator[simpy.Event, Any, None]:
        """Up to `k` decode steps of an unchanged batch as one wait (cut short, at a step boundary, by a kick)."""
        e, env = self.e, self.e.env
        step = e.coster.decode_step(e.pool, decoding[0].decode_spec, len(decoding), ctx + k / 2)
        start = env.now
        self.wake = env.event()
        yield env.any_of([env.timeout(k * step), self.wake])
        self.wake = None
        done = k if env.now >= start + k * step else min(k, int((env.now - start) / step) + 1)
        if env.now < start + done * step:
            yield env.timeout(start + done * step - env.now)
        e.meter.execution(len(decoding), done * step, count=done)
        self._after([], decoding, steps=done)

    def _after(self, chunks: list[tuple[Seq, int]], decoding: list[Seq], steps: int = 1) -> None:
        now = self.e.env.now
        for s, c in chunks:
            s.pending -= c
            if s.pending == 0 and s.generated == 0:
                s.generated = 1
                s.first = now
        for s in decoding:
            s.generated += steps
        for s in [s for s in self.running if s.generated >= s.out and not s.pending]:
            self._finish(s, now)
        for s in decoding:
            if s.blocks and not s.pending:   # still running: finishing or preemption took its blocks
                self._grow(s)

    def _grow(self, s: Seq) -> None:
        """Give `s` a block for its next token, preempting the newest sequence when none is free."""
        e = self.e
        if s.prompt + s.generated < s.blocks * e.block_tokens:   # its next token fits: most steps (a hot path)
            return
        need = e.blocks_for(s.prompt + s.generated + 1)
        while s.blocks < need:
            if self.free:
                self.free -= 1
                s.blocks += 1
                continue
            victim = self.running[-1]
            self._preempt(victim)
            if victim is s:
                return

    def _preempt(self, s: Seq) -> None:
        self.running.remove(s)
        self.free += s.blocks
        s.blocks = 0
        s.pending = s.prompt + s.generated      # recompute the whole context when admitted again
        self.e.meter.preemptions += 1
        self.e.queue.push_front(s.job)

    def _finish(self, s: Seq, now: float) -> None:
        self.running.remove(s)
        self.free += s.blocks
        s.blocks = 0
        self.e.meter.leave(now, now - s.job.enqueued)
        assert s.job.done is not None
        s.job.done.succeed()
