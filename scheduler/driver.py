"""The driver: routes each request through the traced AgentGraph, many requests at once.

It interprets the graph (not the programs' control ops): loops ask the user's predicate, branches run the arm
the selector names, maps fan out and gather, sub-agents recurse. Every leaf step (prompt, llm, embed, retrieve,
tool) runs on the least-loaded replica of the pool whose program holds it. Text and JSON values come back to
the driver; tensors stay on the worker that made them and move to the next pool over that edge's Gloo pair. An LLM
call whose prefill and decode the plan put in different pools runs in three steps: prefill (and the first token)
on a prefill worker, its KV cache over their Gloo pair, decode on a decode worker.

A worker that dies loses the calls it was running and the tensors it held; the driver keeps every step's result
(values in the request's frame, tensors' lineage in its Record), so the step that was lost runs again on a live
replica (or the restarted one) and a lost tensor is recomputed from the step that made it: the request goes on
from its last completed step. A tool marked `@plait.tool(idempotent=False)` is never run twice: a request that
would need it again fails, naming it.
"""

from __future__ import annotations

import itertools
import logging
import math
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from typing import Any

from plait.codegen.program import Program
from plait.scheduler.messages import Done, Recv, Run, Send, TensorRef
from plait.scheduler.workers import WorkerLost, Workers
from plait.sdk.dist import Dist
from plait.sdk.graph import AgentGraph, Node

log = logging.getLogger("plait.driver")
DRIVER = "driver"
LEAF_OPS = {"prompt": "op.format", "llm": "op.decode", "embed": "op.encode", "retrieve": "op.ann_search",
            "tool": "op.py_call"}
# a speech step spans pools (the planner splits encoder, prefill, decode and vocoder): its ops, in order
SPEECH_OPS = {"stt": ("op.encode", "op.prefill", "op.decode"), "tts": ("op.prefill", "op.decode", "op.vocode")}


PREFIX_CHARS = 256   # prompts agreeing on this many characters share their first KV blocks
PREFIX_SLACK = 2     # calls in flight a prefix's replica may have beyond the least loaded before it is passed over
MAX_STEP_ATTEMPTS = 4   # a step whose worker died is run again at most this many times in all


class RunError(RuntimeError):
    """A request failed: which step, where in the user's file, and why."""


class Cancelled(RunError):
    """A request's cancel event was set (its deadline passed, its client went away): no further step is sent."""


@dataclass(frozen=True)
class Retry:
    """A step run again because a worker died: the pool of the worker lost, the step's kind and name, and why
    (`lost`: the step was running there; `recompute`: a tensor it made was held there)."""

    pool: str
    kind: str
    step: str
    why: str


@dataclass
class Figures:
    """--follow-figures: draw token counts, arms and loop counts from the agent's declared figures."""

    follow: bool = False
    tool_latency_declared: bool = False
    seed: int = 0


@dataclass
class Record:
    """What one request did: its output, end-to-end time, and each step's time (LLM calls: TTFT, TPOT)."""

    request: int
    output: Any = None
    error: str | None = None
    seconds: float = 0.0
    steps: list[tuple[str, float]] = field(default_factory=list)
    llm: list[tuple[str, float, float | None, int]] = field(default_factory=list)   # node, ttft, tpot, tokens
    token_ids: list[list[int]] = field(default_factory=list)   # each LLM call's output tokens, in call order
    start_ns: int = 0
    end_ns: int = 0
    spans: list[Span] = field(default_factory=list)
    audio: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)   # tensor -> its WAV file
    cancel: threading.Event | None = None   # set by a server: the driver sends no further step of this request
    on_token: Callable[[str], None] | None = None   # a server's stream: takes the final LLM call's text as it comes
    deadline: float | None = None   # `plait serve --policy edf`: time.time() of its deadline, sent with its LLM calls
    retries: list[Retry] = field(default_factory=list)   # steps run again because a worker died
    # tensor (holder, its start, value id) -> the step that made it (node, operands, op): to recompute a lost one
    lineage: dict[tuple[str, int, int], tuple[Node, list[Any], str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Span:
    """One step of a request as the trace shows it: sent by the driver, computed on a worker, answered.

    queued = start_ns - sent_ns (the control message and the worker's queue); computing = end_ns - start_ns;
    kind "transfer" computes nothing: its span is the Gloo send/receive."""

    name: str
    kind: str
    worker: str
    sent_ns: int
    start_ns: int
    end_ns: int
    done_ns: int


def route(graph: AgentGraph, programs: list[Program], driver_prompts: dict[str, str]) -> dict[Any, str]:
    """The pool of every leaf step of `graph` and its regions, keyed by id(node) (a speech step: by (id(node),
    op), one pool per op; an llm step's prefill also by (id(node), "op.prefill")); DRIVER for a constant prompt
    the placement left to the driver."""
    found: dict[Any, str] = {}

    def pool_of(node: Node, op: str = "") -> str:
        op = op or LEAF_OPS[node.kind]
        candidates = []
        for program in programs:
            for step in program.steps:
                if step.op != op:
                    continue
                key = step.attrs.get("tool") or step.attrs.get("index") or step.model or ""
                if node.kind == "prompt" and step.loc == node.loc or node.kind != "prompt" and key == node.target:
                    candidates.append((step.loc == node.loc, program.pool.id))
        if not candidates and node.kind == "prompt" and node.loc in driver_prompts:
            return DRIVER
        if not candidates:
            raise RunError(f"no pool runs {op} of {node.kind} {node.target!r} ({node.loc}): the programs do not match "
                           "this agent\n  To fix: re-plan (`plait plan FILE:AGENT --out DIR`).")
        return max(candidates, key=lambda c: c[0])[1]   # a step at the node's own line first

    def walk(g: AgentGraph) -> None:
        for node in g.steps:
            if node.kind in SPEECH_OPS:
                for op in SPEECH_OPS[node.kind]:
                    found[id(node), op] = pool_of(node, op)
            elif node.kind in LEAF_OPS:
                found[id(node)] = pool_of(node)
                if node.kind == "llm":   # its prefill's pool: the same one (unified), or a prefill pool (split)
                    found[id(node), "op.prefill"] = pool_of(node, "op.prefill")
            for region in node.regions.values():
                walk(region)

    walk(graph)
    return found


class Driver:
    def __init__(self, graph: AgentGraph, programs: list[Program], workers: Workers, figures: Figures,
                 driver_prompts: dict[str, str] | None = None, max_tokens: int | None = None) -> None:
        self.max_tokens = max_tokens   # --max-tokens: a cap on every decode (LLM tokens, speech tokens, frames)
        self.graph, self.workers, self.figures = graph, workers, figures
        self.driver_prompts = driver_prompts or {}
        self.pools = route(graph, programs, self.driver_prompts)
        # a split LLM call's sampling lives on its decode pool's op.decode step; its prefill worker needs it too
        self.decode_attrs = {(p.pool.id, s.loc, s.model): s.attrs for p in programs for s in p.steps
                             if s.op == "op.decode" and s.kernel == "llm-engine"}
        self.requests = itertools.count()
        self.tags = itertools.count(1)
        self.rng = random.Random(figures.seed)
        self.rng_lock = threading.Lock()
        self.prefix_home: dict[str, str] = {}
        self.edge_lock = threading.Lock()
        self.edge_order: dict[str, threading.Lock] = {}
        self.final_llms = final_llms(graph)

    def run(self, inputs: dict[str, Any], cancel: threading.Event | None = None,
            on_token: Callable[[str], None] | None = None, deadline: float | None = None) -> Record:
        """One request, start to end (blocking); errors are recorded, not raised. Once `cancel` is set no
        further step is sent (the step in flight finishes) and the record's error says so. `on_token` takes the
        text of the LLM calls whose answer is the agent's output, piece by piece, as they generate it. A
        `deadline` (time.time() seconds) goes with its LLM calls: engines admit them earliest deadline first."""
        record = Record(next(self.requests), start_ns=time.time_ns(), cancel=cancel, on_token=on_token,
                        deadline=deadline)
        start = time.perf_counter()
        try:
            out = self._graph(self.graph, [inputs[p.name] for p in self.graph.params], record)
            record.output = out[0] if len(out) == 1 else out
            if isinstance(record.output, TensorRef):
                ref = record.output
                wav = record.audio.get((ref.holder, ref.value))
                record.output = f"<tensor {ref.dtype}{ref.shape}>" + (
                    f" audio at {wav['sample_rate']} Hz, written to {wav['wav']}" if wav else "")
        except Exception as err:
            record.error = str(err)
        finally:
            record.seconds = time.perf_counter() - start
            record.end_ns = time.time_ns()
            self.workers.release(record.request)
        return record

    # --- the interpreter: one method per node kind -----------------------------------------------------------
    def _graph(self, graph: AgentGraph, args: list[Any], rec: Record) -> list[Any]:
        env: dict[str, Any] = {}
        params = iter(args)
        for node in graph.steps:
            ins = [env[i] for i in node.inputs]
            if node.kind == "input":
                env[node.name] = next(params)
            elif node.kind == "output":
                return ins
            elif node.kind in LEAF_OPS:
                env[node.name] = self._leaf(node, ins, rec)
            elif node.kind in SPEECH_OPS:
                value = ins[0]
                for op in SPEECH_OPS[node.kind]:   # each op on its own pool; tensors move between them
                    value = self._leaf(node, [value], rec, op)
                env[node.name] = value
            else:
                env[node.name] = getattr(self, f"_{node.kind}")(node, ins, rec)
        raise RunError(f"graph {graph.agent_name} has no output node")

    def _gather(self, node: Node, ins: list[Any], rec: Record) -> Any:
        return list(ins)

    def _call(self, node: Node, ins: list[Any], rec: Record) -> Any:
        out = self._graph(next(iter(node.regions.values())), ins, rec)
        return out[0] if len(out) == 1 else out

    def _loop(self, node: Node, ins: list[Any], rec: Record) -> Any:
        body = node.regions["body"]
        captured, carried = ins[:-1], ins[-1]
        limit = int(node.attrs["max_iters"])  # type: ignore[arg-type]
        if self.figures.follow:   # the declared expected_iters, not the predicate, decides
            limit = max(1, min(limit, round(self._draw(node.attrs["expected_iters"]))))
        for _ in range(limit):
            done, carried = self._graph(body, [*captured, carried], rec)
            if not self.figures.follow and bool(done):
                break
        return carried

    def _branch(self, node: Node, ins: list[Any], rec: Record) -> Any:
        arms: list[str] = list(node.attrs["arms"])  # type: ignore[arg-type]
        selector = ins[0]
        if self.figures.follow:
            with self.rng_lock:
                arm = self.rng.choices(range(len(arms)), weights=node.attrs["p"])[0]  # type: ignore[arg-type]
        elif isinstance(selector, bool):
            arm = 0 if selector else 1
        elif str(selector) in arms:
            arm = arms.index(str(selector))
        else:
            raise RunError(f"branch at {node.loc}: the selector returned {selector!r}, which names none of the arms "
                           f"{arms}\n  To fix: make the selector return one of {arms}.")
        out = self._graph(node.regions[arms[arm]], ins[1:], rec)
        return out[0]

    def _map(self, node: Node, ins: list[Any], rec: Record) -> Any:
        items, captured = ins[0], ins[1:]
        body = node.regions["body"]
        futures = []
        for item in items:   # fan out: each element on its own thread, so their calls are in flight together
            future: Future[Any] = Future()

            def one(item: Any = item, future: Future[Any] = future) -> None:
                try:
                    future.set_result(self._graph(body, [item, *captured], rec)[0])
                except Exception as err:
                    future.set_exception(err)

            threading.Thread(target=one, daemon=True).start()
            futures.append(future)
        return [f.result() for f in futures]   # fan in, in order

    # --- leaf steps on workers -------------------------------------------------------------------------------
    def _leaf(self, node: Node, ins: list[Any], rec: Record, op: str = "") -> Any:
        """Run one leaf step; when a worker it needed died (its own, or the holder of an operand), run it again
        from its operands, which the driver still has (a lost tensor operand is recomputed first)."""
        for attempt in itertools.count(1):
            try:
                value = self._leaf_once(node, ins, rec, op)
            except WorkerLost as lost:
                if attempt >= MAX_STEP_ATTEMPTS:
                    raise RunError(f"{node.kind} {node.target!r} at {node.loc} failed: its worker died {attempt} "
                                   f"times while it ran, so it is not run again\n{lost}") from None
                rec.retries.append(Retry(lost.key.split("/")[0], node.kind, _step_name(node, op), "lost"))
                log.warning("request %d: %s at %s runs again (%s died)", rec.request, _step_name(node, op),
                            node.loc, lost.key)
                continue
            if isinstance(value, TensorRef):
                rec.lineage[value.holder, value.generation, value.value] = (node, ins, op)
            return value
        raise AssertionError("unreachable")

    def _live(self, ref: TensorRef, rec: Record) -> TensorRef:
        """`ref`, or when its holder died since it was made, the same tensor made again by the step that made it."""
        if self.workers.generation(ref.holder) == ref.generation:
            return ref
        made = rec.lineage.get((ref.holder, ref.generation, ref.value))
        if made is None:
            raise WorkerLost(f"a tensor of request {rec.request} was held by worker {ref.holder}, which died, and "
                             "no step of the request can make it again", ref.holder)
        node, ins, op = made
        if node.kind == "tool" and not _idempotent(node):
            raise RunError(_not_rerun(node, ref.holder, "after it ran, and its result, held there, is lost"))
        rec.retries.append(Retry(ref.holder.split("/")[0], node.kind, _step_name(node, op), "recompute"))
        fresh = self._leaf(node, ins, rec, op)
        assert isinstance(fresh, TensorRef)
        return fresh

    def _leaf_once(self, node: Node, ins: list[Any], rec: Record, op: str = "") -> Any:
        if rec.cancel is not None and rec.cancel.is_set():
            raise Cancelled(f"request {rec.request} was cancelled before {node.kind} {node.target!r} at {node.loc}")
        pool = self.pools[(id(node), op) if op else id(node)]
        if pool == DRIVER:   # a constant prompt: str.format here, no worker involved
            return self.driver_prompts[node.loc].format(*ins)
        if node.kind == "llm" and self.pools[id(node), "op.prefill"] != pool:
            return self._split_llm(node, ins, rec, self.pools[id(node), "op.prefill"], pool)
        key = self._replica(pool, node, ins, rec.cancel)
        args, held = self._operands(ins, key, rec)
        max_tokens = self._max_tokens(node, op)
        sleep_s = None
        if self.figures.tool_latency_declared and node.kind == "tool":
            sleep_s = self._draw(node.attrs.get("latency_ms", 0.0)) / 1e3
        name = _step_name(node, op)
        stream = rec.on_token is not None and id(node) in self.final_llms
        prompt_tokens = self._prompt_tokens(node)
        try:
            done = self._dispatch(node, key, name, rec, lambda call: Run(
                call, rec.request, node.kind, node.target, node.loc, args, held, max_tokens, self.figures.follow,
                sleep_s, op, stream=stream, prompt_tokens=prompt_tokens, deadline=rec.deadline), stream)
        except WorkerLost as lost:   # a call that was sent may have run, in part or whole
            if node.kind == "tool" and not _idempotent(node) and lost.sent:
                raise RunError(_not_rerun(node, lost.key, "while it ran")) from None
            raise
        if done.ttft_s is not None:
            rec.llm.append((f"{node.name} {node.target}", done.ttft_s, done.tpot_s, done.tokens or 0))
            rec.token_ids.append(done.token_ids or [])
        if done.tensor is not None and isinstance(done.value, dict) and "wav" in done.value:
            rec.audio[done.tensor.holder, done.tensor.value] = done.value
        if sleep_s is not None:   # a declared-latency tool returns no value: stand in with its declared type
            return _stand_in(node)
        return done.tensor if done.tensor is not None else done.value

    def _split_llm(self, node: Node, ins: list[Any], rec: Record, prefill_pool: str, decode_pool: str) -> Any:
        """An LLM call over split pools: the prompt and first token on a prefill replica (the one holding the
        prompt's prefix), its KV cache over their Gloo pair to the least-loaded decode replica, the rest there."""
        prefill = self._replica(prefill_pool, node, ins, rec.cancel)
        args, held = self._operands(ins, prefill, rec)
        max_tokens = self._max_tokens(node)
        sampling = self.decode_attrs.get((decode_pool, node.loc, node.target))
        first = self._dispatch(node, prefill, f"llm {node.target} prefill", rec, lambda call: Run(
            call, rec.request, node.kind, node.target, node.loc, args, held, max_tokens, self.figures.follow,
            op="op.prefill", sampling=sampling, prompt_tokens=self._prompt_tokens(node), deadline=rec.deadline))
        name = f"{node.name} {node.target}"
        if first.tensor is None:   # it ended at its first token (an end token, or max_tokens 1): nothing to hand over
            rec.llm.append((name, first.ttft_s or 0.0, None, first.tokens or 1))
            rec.token_ids.append(first.token_ids or [])
            return first.value
        decode = self.workers.least_loaded(decode_pool, rec.cancel)
        try:
            kv = self._move(first.tensor, decode, rec)
        except WorkerLost:   # the whole call runs again (the prefill's copy went with its worker, or is released)
            raise
        except Exception as err:
            raise RunError(f"llm {node.target!r} at {node.loc}: the KV cache hand-off from {prefill} to {decode} "
                           f"failed, so the call failed (the prefill side's copy is released with the request): "
                           f"{err}") from None
        stream = rec.on_token is not None and id(node) in self.final_llms   # the first token's text comes with the rest
        rest = self._dispatch(node, decode, f"llm {node.target} decode", rec, lambda call: Run(
            call, rec.request, node.kind, node.target, node.loc, [first.value, None], {1: kv.value}, max_tokens,
            self.figures.follow, op="op.decode", stream=stream, deadline=rec.deadline), stream)
        rec.llm.append((name, first.ttft_s or 0.0, rest.tpot_s, rest.tokens or 0))
        rec.token_ids.append(rest.token_ids or [])
        return rest.value

    def _operands(self, ins: list[Any], key: str, rec: Record) -> tuple[list[Any], dict[int, int]]:
        """A step's arguments for worker `key`: JSON values as they are, tensors moved there first (held ids)."""
        held: dict[int, int] = {}
        args: list[Any] = []
        for i, value in enumerate(ins):
            if isinstance(value, TensorRef):
                value = self._live(value, rec)
                if value.holder != key:
                    value = self._move(value, key, rec)
                held[i] = value.value
                args.append(None)
            else:
                args.append(value)
        return args, held

    def _prompt_tokens(self, node: Node) -> int | None:
        """An LLM call's prompt length under --follow-figures, drawn from its prompt_tokens figure: the declared
        workload, as a serving benchmark's fixed input lengths (a scaled-down model tokenizes bytes, ~4x the
        tokens of the plan's figure)."""
        figure = node.attrs.get("prompt_tokens")
        if not self.figures.follow or node.kind != "llm" or not isinstance(figure, Dist | float | int):
            return None
        return max(1, round(self._draw(figure)))

    def _max_tokens(self, node: Node, op: str = "") -> int | None:
        """A decode's token budget: drawn from its figures (--follow-figures), capped by --max-tokens."""
        max_tokens = None
        decode = node.kind == "llm" or op == "op.decode"
        if self.figures.follow and decode:
            figure = node.attrs.get("output_tokens")
            if node.kind == "tts":   # parler's decoder makes audio frames: the declared seconds at the codec's rate
                figure = self._draw(node.attrs.get("audio_seconds", 0.0)) * _frame_rate(node.target)
            if isinstance(figure, Dist | float):
                max_tokens = max(1, round(self._draw(figure)))
        if decode and self.max_tokens is not None:   # a cap: a call asking for fewer keeps its own max_tokens
            own = node.attrs.get("max_tokens")
            max_tokens = min(max_tokens or (own if isinstance(own, int) else self.max_tokens), self.max_tokens)
        return max_tokens

    def _dispatch(self, node: Node, key: str, name: str, rec: Record, make: Callable[[int], Run],
                  stream: bool = False) -> Done:
        """Run one step on worker `key` and wait for it; its time and span go into the record. With `stream`, the
        call's text goes to the record's on_token as it is generated."""
        start, sent_ns = time.perf_counter(), time.time_ns()
        on_partial, sent = None, []
        if stream and rec.on_token is not None:
            take = rec.on_token

            def on_partial(text: str) -> None:
                sent.append(len(text))
                take(text)

        try:
            done = self._wait(self.workers.call(key, make, on_partial), node, rec)
        except WorkerLost as lost:   # a client already has part of this call's text: running it again would repeat it
            if sent:
                raise RunError(f"{node.kind} {node.target!r} at {node.loc} failed: its worker died after part of "
                               f"its answer was streamed to the client, so it is not run again\n{lost}") from None
            raise
        rec.steps.append((name, time.perf_counter() - start))
        rec.spans.append(Span(name, node.kind, key, sent_ns, done.start_ns, done.end_ns, time.time_ns()))
        return done

    def _replica(self, pool: str, node: Node, ins: list[Any], cancel: threading.Event | None = None) -> str:
        """The least-loaded replica; for an LLM call, the replica that last ran a prompt with the same prefix
        (its KV blocks are cached there) unless it has PREFIX_SLACK more calls in flight than the least loaded."""
        least = self.workers.least_loaded(pool, cancel)
        if node.kind != "llm" or not ins or not isinstance(ins[0], str):
            return least
        prefix = ins[0][:PREFIX_CHARS]
        home = self.prefix_home.get(prefix)
        load = self.workers.load
        key = (home if home is not None and self.workers.is_ready(home) and load[home] <= load[least] + PREFIX_SLACK
               else least)
        self.prefix_home[prefix] = key
        return key

    def _move(self, ref: TensorRef, to: str, rec: Record) -> TensorRef:
        """The tensor `ref` on worker `to`: a send and a receive over the pair's Gloo group, shape and dtype first."""
        a, b = sorted((ref.holder, to))
        starts = {k: self.workers.generation(k) for k in (a, b)}
        if starts[ref.holder] != ref.generation:   # its holder restarted since the caller checked: lost
            raise WorkerLost(f"worker {ref.holder} restarted, losing a tensor of request {rec.request}", ref.holder)
        # each start of a worker has its own groups: a restarted worker and its peers make the edge's group again
        # (a fresh store prefix; the dead start's rendezvous keys are never read again)
        edge = f"{a}.{starts[a]}>{b}.{starts[b]}".replace("/", ":")
        tag = next(self.tags)
        start, sent_ns = time.perf_counter(), time.time_ns()
        with self.edge_lock:
            order = self.edge_order.setdefault(edge, threading.Lock())
        # A worker runs its edge's transfers one at a time, in the order they reach it, and a Gloo send waits for
        # the matching receive: both ends must see every transfer of an edge in the same order.
        with order:
            sent = self.workers.call(ref.holder, lambda c: Send(c, edge, 0 if ref.holder == a else 1, ref.value, tag))
            got = self.workers.call(to, lambda c: Recv(c, rec.request, edge, 0 if to == a else 1, tag, ref.shape,
                                                       ref.dtype))
        # Either side may fail first (a dead receiver leaves the sender waiting for its Gloo peer): fail on the first.
        pending: set[Future[Done]] = {sent, got}
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                try:
                    self._wait(future, None)
                except RunError as err:   # a Gloo error on one end usually means the other end died: say which
                    dead = self.workers.dead_crash({ref.holder, to}, starts=starts)
                    if dead:
                        # A peer's Gloo error can come before the I/O thread has seen the death and given the
                        # worker its next start: wait for that, or the retry would take this dead edge again at
                        # once (and blame the wrong worker), spending its attempts in milliseconds.
                        until = time.monotonic() + 2.0
                        while not (gone := [k for k in starts if self.workers.generation(k) != starts[k]]) \
                                and time.monotonic() < until:
                            time.sleep(0.01)
                        raise WorkerLost(f"{err}\n{dead}", (gone or [ref.holder])[0]) from None
                    raise
        sent_done, done = sent.result(), got.result()
        rec.steps.append((f"transfer {ref.holder}->{to}", time.perf_counter() - start))
        rec.spans.append(Span(f"transfer {ref.holder}->{to}", "transfer", to, sent_ns,
                              min(sent_done.start_ns, done.start_ns), max(sent_done.end_ns, done.end_ns),
                              time.time_ns()))
        assert done.tensor is not None
        return done.tensor

    def _wait(self, future: Future[Done], node: Node | None, rec: Record | None = None) -> Done:
        if rec is not None and rec.cancel is not None:   # a server's request: its cancel also stops the step
            while not rec.cancel.is_set() and not future.done():
                wait([future], timeout=0.05)
            if not future.done():   # workers drop the request's LLM calls (the engine frees their blocks)
                self.workers.cancel(rec.request)
        done = future.result()
        if done.error is not None:
            where = f"{node.kind} {node.target!r} at {node.loc}" if node is not None else "a transfer"
            raise RunError(f"{where} failed: {done.error}")
        return done

    def _draw(self, figure: Any) -> float:
        if not isinstance(figure, Dist):
            return float(figure or 0.0)
        with self.rng_lock:
            return max(0.0, float(figure.quantile(min(max(self.rng.random(), 1e-6), 1 - 1e-6))))


def _step_name(node: Node, op: str = "") -> str:
    return f"{node.kind} {node.target or node.name}".strip() + (f" {op.removeprefix('op.')}" if op else "")


def _idempotent(node: Node) -> bool:
    return node.attrs.get("idempotent", True) is not False


def _not_rerun(node: Node, key: str, when: str) -> str:
    return (f"tool {node.target!r} at {node.loc} is marked @plait.tool(idempotent=False), and its worker {key} died "
            f"{when}: plait does not run it again (it may already have taken effect), so the request failed.\n"
            "  To fix: retry the request from the client if running the tool twice is safe for this input, or make "
            "the tool safe to repeat (e.g. keyed by a request id) and drop idempotent=False.")


def final_llms(graph: AgentGraph) -> set[int]:
    """id() of the LLM steps whose text is the agent's output, through sub-agent calls and branch arms (not
    loops: a loop's LLM runs many times): the calls a server streams."""
    found: set[int] = set()

    def visit(g: AgentGraph) -> None:
        for name in g.output.inputs[:1]:
            node = g.step(name)
            if node.kind == "llm":
                found.add(id(node))
            elif node.kind in ("call", "branch"):
                for region in node.regions.values():
                    visit(region)

    visit(graph)
    return found


def _frame_rate(model: str) -> float:
    """Audio frames per second of a speech model's codec (what its decoder generates)."""
    from plait.planner.catalog import load_catalog

    voc = load_catalog().model(model).vocoder
    if voc is None:
        return 1.0
    return voc.sample_rate / math.prod(voc.upsample_rates)


def _stand_in(node: Node) -> Any:
    return {"bool": False, "text": "", "texts": [], "json": None}.get(str(node.type), "")


Runner = Callable[[dict[str, Any]], Record]
