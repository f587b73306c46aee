"""A worker's LLM engine: calls in, Done messages out, stepped between control messages.

Every call of every request and call site the pool serves joins one continuously batched engine. In the unified
role a call runs to its end here. Split pools (DESIGN.md, "The serving model") hand it over: a prefill-role engine
computes the prompt and samples the first token, then `export_kv` copies the sequence's KV cache out and frees its
blocks at once (they stay cached for prefix reuse); the worker holds the copy as one tensor, which the driver moves
to a decode worker over their edge's Gloo pair; that worker's decode-role engine `import_kv`s it and continues.

Timings: TTFT runs from the call's arrival at this worker to its first token (on a prefill worker, the token
sampled there, before the hand-off: it could stream to the user from there). TPOT is (last token - first token) /
(tokens - 1), where a decode worker counts from the import (when the KV arrived and joined its engine's queue).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from plait.scheduler.messages import Done, Partial, Run


@dataclass
class _Call:
    run: Run
    start: float           # perf_counter at arrival (a decode worker: at the import)
    start_ns: int
    first: float | None = None
    stream: Any = None     # a TextStream when the driver asked for the call's text as it comes


class LLMCalls:
    """The engine of one worker and the calls in it. `hold(call, request, tensor)` keeps a tensor on the worker and
    returns the Done that names it (the worker's value store)."""

    def __init__(self, engine: Any, program: Any, hold: Callable[[int, int, Any], Done]) -> None:
        self.engine, self.program, self.hold = engine, program, hold
        self.calls: dict[int, _Call] = {}
        self.sites_peak = 0    # most call sites (user lines) whose sequences ran in one engine step

    def __len__(self) -> int:
        return len(self.calls)

    def busy(self) -> bool:
        return self.engine is not None and bool(self.engine.has_unfinished())

    def health(self) -> dict[str, Any]:
        """The engine's part of a health answer: its role, KV blocks free of all, prefix hits, batch sites."""
        if self.engine is None:
            return {}
        return {"engine": self.engine.stats(), "llm_role": self.engine.role, "kv_blocks": self.engine.num_blocks,
                "kv_blocks_free": self.engine.block_manager.num_free_blocks,
                "prefix_hit_tokens": self.engine.prefix_hit_tokens, "batch_sites_peak": self.sites_peak}

    def cancel(self, request: int) -> list[Done]:
        """Drop every call of `request` from the engine (its blocks freed): the Done that fails each."""
        out = []
        for rid, call in list(self.calls.items()):
            if call.run.request == request:
                self.engine.abort(rid)
                del self.calls[rid]
                out.append(Done(call.run.call, error="cancelled: the request's deadline passed or its client left"))
        return out

    def _stream(self, run: Run, params: Any, already: list[int]) -> Any:
        from plait.scheduler.textstream import TextStream

        if not run.stream:
            return None
        stream = TextStream(self.engine.tokenizer, params.stop)
        for token in already:   # a decode worker's first token was sampled on the prefill pool
            stream.push(token)
        stream.sent = ""        # ... and its text has not been sent yet: the first piece carries it
        return stream

    def _params(self, run: Run) -> Any:
        """The call's sampling: the decode step's attributes (this pool's, or the driver's copy for a split
        prefill), with the driver's max_tokens and ignore-EOS."""
        from plait.codegen.llm import sampling_for

        attrs = run.sampling
        if attrs is None:
            decodes = [s for s in self.program.steps if s.op == "op.decode"]
            attrs = next((s.attrs for s in decodes if s.loc == run.loc), decodes[0].attrs if decodes else {})
        params = sampling_for({**attrs, **({"max_tokens": run.max_tokens} if run.max_tokens is not None else {})})
        params.max_tokens = max(1, min(params.max_tokens, self.engine.config.max_position_embeddings // 2))
        params.ignore_eos = run.ignore_eos
        return params

    def add(self, run: Run, args: list[Any]) -> None:
        """Queue a call: a prompt (unified or prefill role), or an exported KV cache (args: header, tensor) to
        continue (decode role)."""
        params = self._params(run)
        start, start_ns = time.perf_counter(), time.time_ns()
        if self.engine.role == "decode":
            header, kv = args
            rid = self.engine.import_kv(header, {"k": kv[0], "v": kv[1]}, params, deadline=run.deadline)
            made = list(header["token_ids"])[header["num_prompt_tokens"]:]
            self.calls[rid] = _Call(run, start, start_ns, first=start, stream=self._stream(run, params, made))
            return
        max_pos = self.engine.config.max_position_embeddings
        prompt = self.engine.tokenizer.encode(str(args[0]))
        if run.prompt_tokens is not None and prompt:   # the declared length: cut (keeping the shared head) or repeat
            prompt = (prompt * -(-run.prompt_tokens // len(prompt)))[:run.prompt_tokens]
        prompt = prompt[-(max_pos - params.max_tokens):]   # a scaled-down model has fewer positions: keep the end
        rid = self.engine.add_request(prompt, params, deadline=run.deadline)
        streamed = run.stream and self.engine.role != "prefill"   # a split call streams from its decode worker
        self.calls[rid] = _Call(run, start, start_ns, stream=self._stream(run, params, []) if streamed else None)

    def step(self) -> list[Done | Partial]:
        """One engine step: the next piece of every streamed call's text, and the Done of every call it finished
        (or, in the prefill role, parked and exported)."""
        import torch

        from plait.codegen.engine.sequence import SequenceStatus

        out: list[Done | Partial] = []
        tokens = self.engine.step()
        sites = {self.calls[t.request_id].run.loc for t in tokens if t.request_id in self.calls}
        self.sites_peak = max(self.sites_peak, len(sites))
        for token in tokens:
            call = self.calls[token.request_id]
            now = time.perf_counter()
            if call.first is None:
                call.first = now
            if call.stream is not None and (piece := call.stream.push(token.token_id)):
                out.append(Partial(call.run.call, piece))
            if not token.finished:
                continue
            del self.calls[token.request_id]
            seq = self.engine.sequences[token.request_id]
            if seq.status is SequenceStatus.PARKED:   # prefill role: hand the KV cache over
                header, kv = self.engine.export_kv(token.request_id)
                done = self.hold(call.run.call, call.run.request, torch.stack([kv["k"], kv["v"]]))
                done.value = header
                done.ttft_s, done.tokens = call.first - call.start, 1
            else:
                result = self.engine.output(token.request_id)
                if call.stream is not None and (piece := call.stream.finish(result.text or "")):
                    out.append(Partial(call.run.call, piece))
                n = len(result.token_ids)
                done = Done(call.run.call, value=result.text, tokens=n, token_ids=list(result.token_ids),
                            tpot_s=(now - call.first) / (n - 1) if n > 1 else None)
                if self.engine.role != "decode":   # a decode worker's first token came from the prefill pool
                    done.ttft_s = call.first - call.start
            done.start_ns, done.end_ns = call.start_ns, time.time_ns()
            out.append(done)
        return out
