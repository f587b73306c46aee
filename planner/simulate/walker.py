"""The request walker: each request follows the agent's control flow through the pools.

A walk of a graph turns each node into an event: compute nodes (llm, embed, retrieve, tool, stt, tts) are
SimPy processes that wait for their inputs, move the bytes that cross a device boundary over the link between
the two device types, and submit jobs to their pools; loops, branches, maps and calls are unrolled when the
walk reaches them, with iteration counts, arms and lengths drawn from their planning figures (a do-while
loop's next iteration waits for its `until` check); glue (prompt, gather) waits for its inputs. An event's
value is (id of the pool holding the result or None for the request's own input, bytes of the result); a value
read by another pool crosses the link between the two pools' device types, as the planner charges it.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any, cast

import simpy

from plait.planner.catalog import Catalog
from plait.planner.grouping import StageWork
from plait.planner.plan import Pool
from plait.planner.simulate.link import Link
from plait.planner.simulate.llm import Engine, Seq
from plait.planner.simulate.queues import BatchServers, Job
from plait.planner.simulate.sampling import draw, draw_arm, draw_count, figure, items, number
from plait.planner.workload import OpSpec, kv_cache_bytes
from plait.sdk.graph import AgentGraph, Node

BYTES_PER_TOKEN = 4.0
MIN_TOKENS = 64.0     # as grouping.py sizes a text edge
Val = tuple[str | None, float]


@dataclass
class Request:
    """One request's clock: arrival, deadline (edf), end, and per LLM call (stage, ttft, tpot or None)."""

    rid: int
    arrival: float
    deadline: float
    end: float = -1.0
    # per LLM, speech or TTS call: (stage, ttft from issue, tpot, first token - arrival, a text LLM's call)
    calls: list[tuple[str, float, float | None, float, bool]] = field(default_factory=list)


@dataclass
class Runtime:
    """What a walk submits to: per stage name, its pool and that pool's server; links between two pools' ids."""

    env: simpy.Environment
    rng: random.Random
    stages: dict[str, dict[str, StageWork]]
    pools: dict[str, Pool]
    servers: dict[str, BatchServers | Engine]
    link: Callable[..., Link]
    catalog: Catalog


class Walker:
    def __init__(self, rt: Runtime):
        self.rt, self.env, self.rng = rt, rt.env, rt.rng

    # ------------------------------------------------------------------ graph structure

    def walk(self, g: AgentGraph, args: list[simpy.Event], req: Request) -> list[simpy.Event]:
        """Events for the outputs of one execution of `g` whose parameters are `args`."""
        vals: dict[str, simpy.Event] = dict(zip([p.name for p in g.params], args, strict=True))
        for node in g.steps:
            ins = [vals[i] for i in node.inputs]
            if node.kind == "input":
                continue
            if node.kind == "output":
                return ins
            vals[node.name] = self._node(node, ins, req)
        raise AssertionError(f"graph {g.name} has no output node")

    def _node(self, node: Node, ins: list[simpy.Event], req: Request) -> simpy.Event:
        env, a = self.env, node.attrs
        if node.kind == "loop":
            body = node.regions["body"]
            carried = ins[-1]
            for _ in range(draw_count(figure(a.get("expected_iters"), 1.0), self.rng, 1, int(number(a.get("max_iters"), 1)))):
                done, nxt = self.walk(body, [*ins[:-1], carried], req)
                carried = env.process(self._glue([nxt, done], 0.0, value_of=0))
            return carried
        if node.kind == "branch":
            arms = [str(x) for x in items(a["arms"])]
            arm = arms[draw_arm([float(x) for x in items(a["p"])], self.rng)]
            # the arm runs once its selector has decided: its inputs wait for the selector's value too
            gated: list[simpy.Event] = [env.process(self._glue([x, ins[0]], 0.0, value_of=0)) for x in ins[1:]]
            return self.walk(node.regions[arm], gated, req)[0]
        if node.kind == "map":
            n = draw_count(figure(a.get("expected_len"), 1.0), self.rng, lo=0)
            item = env.process(self._split(ins[0], max(n, 1)))
            outs = [self.walk(node.regions["body"], [item, *ins[1:]], req)[0] for _ in range(n)]
            return env.process(self._glue(outs or [item], 0.0))
        if node.kind == "call":
            return self.walk(node.regions["callee"], ins, req)[0]
        if node.kind in ("prompt", "gather"):
            return env.process(self._glue(ins, number(a.get("template_tokens"), 0.0) * BYTES_PER_TOKEN))
        return env.process(self._compute(node, ins, req))

    def _wait(self, ins: list[simpy.Event]) -> Generator[simpy.Event, Any, list[Val]]:
        pending = [e for e in ins if not e.processed]
        if pending:
            yield self.env.all_of(pending)
        return [cast(Val, e.value) for e in ins]

    def _glue(self, ins: list[simpy.Event], extra: float, value_of: int | None = None) -> Generator[Any, Any, Val]:
        vals = yield from self._wait(ins)
        if value_of is not None:
            return vals[value_of]
        device = next((d for d, _ in reversed(vals) if d is not None), None)
        return device, sum(b for _, b in vals) + extra

    def _split(self, items: simpy.Event, n: int) -> Generator[Any, Any, Val]:
        (device, nbytes), = yield from self._wait([items])
        return device, nbytes / n

    # ------------------------------------------------------------------ compute nodes

    def _pool(self, stage: StageWork) -> tuple[Pool, Any]:
        pool = self.rt.pools[stage.name]
        return pool, self.rt.servers[pool.id]

    def _move(self, vals: list[Val], pool: str) -> simpy.Event | None:
        """The transfer of the inputs another pool holds (None when all are here or are the request's input)."""
        nbytes = sum(max(b, MIN_TOKENS * BYTES_PER_TOKEN) for d, b in vals if d is not None and d != pool)
        return self.rt.link(next(d for d, _ in vals if d is not None and d != pool), pool).send(nbytes) \
            if nbytes else None

    def _compute(self, node: Node, ins: list[simpy.Event], req: Request) -> Generator[Any, Any, Val]:
        vals = yield from self._wait(ins)
        issued = self.env.now
        stages = self.rt.stages[node.name]
        first = stages[next(iter(stages))]
        pool, _server = self._pool(first)
        if (move := self._move(vals, pool.id)) is not None:
            yield move
        a, rng = node.attrs, self.rng
        if node.kind == "tool":
            seconds = draw(figure(a.get("latency_ms"), 1.0), rng) / 1e3
            yield self._submit(first, Job(size=seconds, deadline=req.deadline))
            out = float(figure(a.get("output_tokens"), MIN_TOKENS).mean)
        elif node.kind in ("embed", "retrieve"):
            spec = first.spec
            if node.kind == "embed" and spec.tokens:
                spec = spec.model_copy(update={"tokens": self._scaled(spec.tokens, a.get("input_tokens"))})
            yield self._submit(first, Job(payload=spec, deadline=req.deadline))
            out = number(a.get("dim"), 384.0) if node.kind == "embed" else \
                number(a.get("k"), 1.0) * number(a.get("doc_tokens"), 100.0)
        elif node.kind == "llm":
            n = draw_count(figure(a.get("output_tokens"), 1.0), rng, 1, int(number(a.get("max_tokens"), 1 << 30)))
            prompt = self._scaled(stages["prefill"].spec.tokens or 1, a.get("prompt_tokens"))
            yield from self._llm(stages, prompt, n, req, issued, text=True)
            out = float(n)
        elif node.kind == "stt":
            yield self._submit(stages["encode"], Job(payload=stages["encode"].spec, deadline=req.deadline))
            n = draw_count(figure(a.get("output_tokens"), 1.0), rng, 1)
            yield from self._llm(stages, stages["prefill"].spec.tokens or 1, n, req, issued)
            out = float(n)
        else:   # tts: prompt from the text, codec frames in proportion to the audio drawn, then the vocoder
            audio = figure(a.get("audio_seconds"), 1.0)
            seconds = max(draw(audio, rng), 0.1)
            n = max(1, round(stages["decode"].steps * seconds / audio.mean)) if audio.mean > 0 else 1
            prompt = self._scaled(stages["prefill"].spec.tokens or 1, a.get("text_tokens"))
            yield from self._llm(stages, prompt, n, req, issued)
            voc = stages["vocode"]
            yield self._submit(voc, Job(payload=voc.spec.model_copy(update={"audio_seconds": seconds}),
                                        deadline=req.deadline))
            out = 0.0
        last = self.rt.pools[stages[next(reversed(stages))].name]
        return last.id, max(out, 1.0) * BYTES_PER_TOKEN

    def _scaled(self, tokens: int, fig: Any) -> int:
        """`tokens` (the planner's figure at the mean) scaled by a draw of `fig` over its mean."""
        d = figure(fig, float(tokens))
        return max(1, round(tokens * draw(d, self.rng) / d.mean)) if d.mean > 0 else tokens

    def _submit(self, stage: StageWork, job: Job) -> simpy.Event:
        _pool, server = self._pool(stage)
        return server.submit(job)

    def _llm(self, stages: dict[str, StageWork], prompt: int, n: int, req: Request,
             issued: float, text: bool = False) -> Generator[Any, Any, None]:
        """Prefill then decode: in one unified engine, or a prefill pool, the KV hand-off and a decode pool.

        TTFT counts from `issued`, when the node's inputs were ready (its transfers and, for speech, the
        encoder included); the request also keeps the first token's time since its arrival."""
        pre, dec = stages["prefill"], stages["decode"]
        decode_spec = dec.spec if dec.spec.op == "decode" else OpSpec(op="decode", model=pre.spec.model, ctx=prompt)
        seq = Seq(prompt, n, pre.spec, decode_spec, Job(deadline=req.deadline))
        seq.job.payload = seq
        ppool, pserver = self._pool(pre)
        dpool, dserver = self._pool(dec)
        if pserver is dserver:
            yield pserver.submit(seq)
        else:
            yield pserver.submit(Job(size=prompt, payload=seq, deadline=req.deadline))
            seq.first, seq.generated, seq.pending = self.env.now, 1, 0
            if n > 1:
                if pre.spec.model:   # the KV cache moves to the peer: over the network, or NVLink on one type
                    kv = kv_cache_bytes(self.rt.catalog.model(pre.spec.model), prompt)
                    yield self.rt.link(ppool.id, dpool.id).send(kv)
                yield dserver.submit(seq)
        assert seq.first is not None
        tpot = (self.env.now - seq.first) / (n - 1) if n > 1 else None
        req.calls.append((pre.name, seq.first - issued, tpot, seq.first - req.arrival, text))
