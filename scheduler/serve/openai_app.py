"""The built-in LLM engine as an OpenAI-compatible server: /v1/completions and /v1/chat/completions (whole
answers, or server-sent events with `stream: true`), /v1/models, /healthz, /metrics.

One thread owns the engine (EngineLoop): requests reach it through a queue, and every token it makes goes back
to its request's asyncio queue, so all requests share one continuously batched engine. A request whose client
disconnects is aborted in the engine (its KV blocks freed). Errors are OpenAI-shaped with 4xx statuses, which
the official client raises as its typed errors.
"""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from plait.scheduler.serve.admission import Admission, QueueFull
from plait.scheduler.serve.chat import ChatTemplate, ChatTemplateError
from plait.scheduler.serve.metrics import CONTENT_TYPE, ServeMetrics
from plait.scheduler.serve.security import error_body, guarded, validation_error
from plait.scheduler.textstream import TextStream

log = logging.getLogger("plait.serve")
Event = tuple[str, Any]   # ("token", id) | ("done", RequestOutput) | ("error", message)


# --- request bodies (OpenAI's names; what plait does not do is refused by name, not ignored) ----------------
class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str
    max_tokens: int | None = Field(None, ge=1)
    temperature: float = Field(1.0, ge=0, le=2)
    top_p: float = Field(1.0, gt=0, le=1)
    stream: bool = False
    stream_options: dict[str, bool] | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int = Field(1, ge=1, le=1, description="one choice per request")
    user: str | None = None
    ignore_eos: bool = Field(False, description="vLLM's extension: generate max_tokens, past any end token "
                                                "(`plait cost --remote` measures decode with it)")


class CompletionBody(_Body):
    prompt: str | list[str] | list[int]


class TextPart(BaseModel):
    type: Literal["text"]
    text: str


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None
    name: str | None = None


class ChatBody(_Body):
    messages: list[Message] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)


# --- the engine's thread ------------------------------------------------------------------------------------
@dataclass
class Handle:
    emit: Callable[[Event], object]
    rid: int | None = None


class EngineLoop:
    """Owns the engine on one thread. submit()/abort() may be called from any thread; emit callbacks run on the
    engine's thread (they hand events over to the event loop)."""

    def __init__(self, engine: Any, on_step: Callable[[int], None] = lambda n: None) -> None:
        self.engine, self.on_step = engine, on_step
        self.inbox: queue.Queue[tuple[str, Handle, Any]] = queue.Queue()
        self.live: dict[int, Handle] = {}
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name="plait-engine")
        self.thread.start()

    def submit(self, prompt: list[int], params: Any, emit: Callable[[Event], object]) -> Handle:
        handle = Handle(emit)
        self.inbox.put(("add", handle, (prompt, params)))
        return handle

    def abort(self, handle: Handle) -> None:
        self.inbox.put(("abort", handle, None))

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(5)

    def _take(self, kind: str, handle: Handle, payload: Any) -> None:
        if kind == "add":
            try:
                handle.rid = self.engine.add_request(*payload)
            except ValueError as err:   # too long, a token id out of range: the client's request
                handle.emit(("error", str(err)))
                return
            self.live[handle.rid] = handle
        elif handle.rid is not None and self.live.pop(handle.rid, None) is not None:
            self.engine.abort(handle.rid)

    def _run(self) -> None:
        while not self.stopping.is_set():
            busy = self.engine.has_unfinished()
            try:
                self._take(*(self.inbox.get_nowait() if busy else self.inbox.get(timeout=0.05)))
                while True:
                    self._take(*self.inbox.get_nowait())
            except queue.Empty:
                pass
            if not self.engine.has_unfinished():
                continue
            try:
                outputs = self.engine.step()
            except Exception as err:   # a bug in a step fails its requests, not the server
                log.exception("engine step failed")
                for handle in self.live.values():
                    handle.emit(("error", f"the engine failed: {err}"))
                for rid in list(self.live):
                    self.engine.abort(rid)
                self.live.clear()
                continue
            self.on_step(len(outputs))
            for out in outputs:
                owner = self.live.get(out.request_id)
                if owner is None:
                    continue
                owner.emit(("token", out.token_id))
                if out.finished:
                    del self.live[out.request_id]
                    owner.emit(("done", self.engine.output(out.request_id)))


# --- the server ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelServeOptions:
    api_key: str | None = None
    concurrency: int = 16          # sequences the engine batches at once
    max_queue: int = 64            # requests waiting for a batch slot; past it: 503
    max_tokens: int = 1024         # the most a request may ask for (more: 422); chat's default
    max_body_bytes: int = 1 << 20


@dataclass
class ServedModel:
    name: str          # as asked for (`llama-3.1-8b`)
    run_name: str      # what runs (`llama-3.1-8b@tiny` without weights)
    engine: Any
    template: ChatTemplate
    banner: str
    created: int = field(default_factory=lambda: int(time.time()))


def load_model(name: str, weights: str | None, max_batch: int = 16) -> ServedModel:
    """The engine for catalog model `name`: from a local checkpoint, or at its @tiny size with random weights."""
    from plait.codegen.llm import build_engine
    from plait.scheduler.worker import run_model

    run_name = run_model(name, weights, "tiny")
    engine = build_engine(run_name, weights, max_batch=max_batch)
    template = ChatTemplate.load(weights)
    what = (f"weights from {Path(weights).resolve()}" if weights else
            "random weights at its scaled-down size: the text is noise; --weights DIR serves a real checkpoint")
    banner = (f"serving {run_name} with plait's engine ({what}); chat template: {template.source}; "
              f"{engine.config.max_position_embeddings} positions")
    return ServedModel(name, run_name, engine, template, banner)


class ModelServer:
    def __init__(self, served: ServedModel, options: ModelServeOptions) -> None:
        self.served, self.options = served, options
        self.tokenizer = served.engine.tokenizer
        self.admission = Admission(options.concurrency, options.max_queue)
        self.metrics = ServeMetrics(lambda: self.admission.waiting, lambda: self.admission.running)
        self.loop = EngineLoop(served.engine, self.metrics.batch.observe)
        self.metrics.engine_gauges(lambda: {served.run_name: served.engine.stats()})

    def answer(self, route: str, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
        self.metrics.requests.labels(route, str(status)).inc()
        return JSONResponse(body, status_code=status, headers=headers)

    def models(self) -> dict[str, Any]:
        names = dict.fromkeys([self.served.name, self.served.run_name])
        return {"object": "list", "data": [{"id": n, "object": "model", "created": self.served.created,
                                            "owned_by": "plait"} for n in names]}

    def _sampling(self, body: _Body, max_tokens: int) -> Any:
        from plait.codegen.engine.sampling import SamplingParams

        stop = [body.stop] if isinstance(body.stop, str) else list(body.stop or [])
        return SamplingParams(temperature=body.temperature, top_p=body.top_p, max_tokens=max_tokens, stop=stop,
                              seed=body.seed, ignore_eos=body.ignore_eos)

    def _prompt(self, route: str, body: _Body) -> list[int] | str:
        """The prompt's token ids, or a 422 message."""
        if isinstance(body, ChatBody):
            messages = [{"role": m.role, "name": m.name,
                         "content": m.content if isinstance(m.content, str) or m.content is None
                         else "".join(p.text for p in m.content)} for m in body.messages]
            try:
                return self.tokenizer.encode(self.served.template.render(messages))
            except ChatTemplateError as err:
                return str(err)
        assert isinstance(body, CompletionBody)
        prompt = body.prompt
        if isinstance(prompt, list) and prompt and isinstance(prompt[0], str):
            if len(prompt) != 1:
                return "prompt: one prompt per request (a list of several strings is a batch plait does not take)"
            prompt = prompt[0]
        if isinstance(prompt, str):
            return self.tokenizer.encode(prompt) or "prompt: empty"
        return list(prompt) or "prompt: empty"   # type: ignore[arg-type]

    async def handle(self, route: str, request: Request) -> Any:
        loop = asyncio.get_running_loop()
        start = loop.time()
        kind = ChatBody if route.endswith("chat/completions") else CompletionBody
        try:
            body = kind.model_validate(json.loads(await request.body()))
        except ValueError as err:
            if isinstance(err, ValidationError):
                return self.answer(route, 422, _unsupported(err))
            return self.answer(route, 422, error_body(f"the request body is not JSON: {err}"))
        if body.model not in (self.served.name, self.served.run_name):
            return self.answer(route, 404, error_body(f"model {body.model!r} is not served here; this server "
                                                      f"runs {self.served.name!r}", param="model",
                                                      code="model_not_found"))
        asked = body.max_tokens or (body.max_completion_tokens if isinstance(body, ChatBody) else None)
        if asked is not None and asked > self.options.max_tokens:
            return self.answer(route, 422, error_body(
                f"max_tokens: {asked} is more than this server allows ({self.options.max_tokens}, --max-tokens)",
                param="max_tokens"))
        max_tokens = asked or (self.options.max_tokens if isinstance(body, ChatBody) else 16)
        prompt = self._prompt(route, body)
        if isinstance(prompt, str):
            return self.answer(route, 422, error_body(prompt, param="messages" if kind is ChatBody else "prompt"))
        try:
            await self.admission.acquire(start)
        except QueueFull:
            return self.answer(route, 503, error_body(
                f"server busy: {self.admission.running} requests generating and {self.admission.waiting} waiting "
                f"(--max-queue {self.options.max_queue})", "server_busy"), {"Retry-After": "1"})
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self.admission.release()

        events: asyncio.Queue[Event] = asyncio.Queue()
        handle = self.loop.submit(prompt, self._sampling(body, max_tokens),
                                  lambda ev: loop.call_soon_threadsafe(events.put_nowait, ev))
        first = await events.get()   # an error (too long a prompt) comes first and alone: still a plain 4xx
        if first[0] == "error":
            release()
            return self.answer(route, 422, error_body(first[1], param="prompt"))
        reply = Reply(self, route, body, len(prompt), start)
        reply.first_token_at = loop.time()
        if body.stream:
            self.metrics.requests.labels(route, "200").inc()
            return StreamingResponse(reply.stream(first, events, handle, release), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache"})
        try:
            ids: list[int] = []
            event = first
            while event[0] == "token":
                ids.append(event[1])
                event = await self._next(events, request, handle)
            if event[0] == "error":
                return self.answer(route, 500, error_body(event[1], "engine_error"))
            if event[0] == "gone":
                return self.answer(route, 499, error_body("the client disconnected; generation was aborted"))
            return self.answer(route, 200, reply.whole(event[1]))
        finally:
            release()

    async def _next(self, events: asyncio.Queue[Event], request: Request, handle: Handle) -> Event:
        """The next event; ("gone", None) once the client disconnected (the engine request is aborted)."""
        while True:
            try:
                return await asyncio.wait_for(events.get(), 0.25)
            except TimeoutError:
                if await request.is_disconnected():
                    self.loop.abort(handle)
                    return ("gone", None)


def _unsupported(err: ValidationError) -> dict[str, Any]:
    """A 422 body that also says which of OpenAI's parameters plait's server does not take."""
    body = validation_error(err)
    extras = [".".join(str(x) for x in e["loc"]) for e in err.errors() if e["type"] == "extra_forbidden"]
    if extras:
        body["error"]["message"] += f" (plait's server does not support {', '.join(extras)}: leave it out)"
    if any(e["loc"][:1] == ("n",) for e in err.errors()):
        body["error"]["message"] += " (plait's server returns one choice per request)"
    return body


class Reply:
    """One request's answer in OpenAI's shapes: whole, or as server-sent event chunks."""

    def __init__(self, server: ModelServer, route: str, body: _Body, prompt_tokens: int, start: float) -> None:
        self.server, self.route, self.body, self.prompt_tokens, self.start = server, route, body, prompt_tokens, start
        self.chat = isinstance(body, ChatBody)
        self.id = ("chatcmpl-" if self.chat else "cmpl-") + uuid.uuid4().hex[:24]
        self.created = int(time.time())
        self.first_token_at: float | None = None

    def _usage(self, completion: int) -> dict[str, int]:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": completion,
                "total_tokens": self.prompt_tokens + completion}

    def _observe(self, output: Any) -> None:
        loop = asyncio.get_running_loop()
        m, name = self.server.metrics, self.server.served.run_name
        m.latency.labels(self.route).observe(loop.time() - self.start)
        if self.first_token_at is not None:
            m.ttft.labels(name).observe(self.first_token_at - self.start)
            n = len(output.token_ids)
            if n > 1:
                m.tpot.labels(name).observe((loop.time() - self.first_token_at) / (n - 1))

    def whole(self, output: Any) -> dict[str, Any]:
        self._observe(output)
        text = output.text or ""
        choice: dict[str, Any] = {"index": 0, "finish_reason": output.finish_reason, "logprobs": None}
        if self.chat:
            choice["message"] = {"role": "assistant", "content": text}
        else:
            choice["text"] = text
        return {"id": self.id, "object": "chat.completion" if self.chat else "text_completion",
                "created": self.created, "model": self.body.model, "choices": [choice],
                "usage": self._usage(len(output.token_ids))}

    def _chunk(self, text: str | None, finish: str | None, role: bool = False) -> str:
        if self.chat:
            delta: dict[str, Any] = {}
            if role:
                delta["role"] = "assistant"
            if text is not None:
                delta["content"] = text
            choice: dict[str, Any] = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        else:
            choice = {"index": 0, "text": text or "", "finish_reason": finish, "logprobs": None}
        return self._sse({"id": self.id, "object": "chat.completion.chunk" if self.chat else "text_completion",
                          "created": self.created, "model": self.body.model, "choices": [choice]})

    @staticmethod
    def _sse(data: dict[str, Any]) -> str:
        return f"data: {json.dumps(data)}\n\n"

    async def stream(self, first: Event, events: asyncio.Queue[Event], handle: Handle,
                     release: Callable[[], None]) -> AsyncIterator[str]:
        """Chunks as tokens come; a client that goes away cancels this generator, which aborts the request."""
        stop = [self.body.stop] if isinstance(self.body.stop, str) else list(self.body.stop or [])
        text = TextStream(self.server.tokenizer, stop)
        finished = False
        try:
            if self.chat:
                yield self._chunk("", None, role=True)
            event = first
            while event[0] == "token":
                delta = text.push(event[1])
                if delta:
                    yield self._chunk(delta, None)
                event = await events.get()
            finished = True
            if event[0] == "error":
                yield self._sse(error_body(event[1], "engine_error"))
                return
            output = event[1]
            self._observe(output)
            rest = text.finish(output.text or "")
            yield self._chunk(rest if rest or not self.chat else None, output.finish_reason)
            if (self.body.stream_options or {}).get("include_usage"):
                yield self._sse({"id": self.id, "object": "chat.completion.chunk" if self.chat else "text_completion",
                                 "created": self.created, "model": self.body.model, "choices": [],
                                 "usage": self._usage(len(output.token_ids))})
            yield "data: [DONE]\n\n"
        finally:
            if not finished:
                self.server.loop.abort(handle)
            release()


def create_model_app(served: ServedModel, options: ModelServeOptions) -> tuple[Any, EngineLoop]:
    """The ASGI app (behind the API key and the body limit) and the engine thread it feeds (stop() it)."""
    server = ModelServer(served, options)
    app = FastAPI(title=f"plait model {served.name}", docs_url=None, redoc_url=None)

    @app.get("/v1/models")
    async def models() -> Any:
        return server.models()

    @app.post("/v1/completions")
    async def completions(request: Request) -> Any:
        return await server.handle("/v1/completions", request)

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Any:
        return await server.handle("/v1/chat/completions", request)

    @app.get("/healthz")
    async def healthz() -> Any:
        alive = server.loop.thread.is_alive()
        return JSONResponse({"status": "ok" if alive else "engine thread stopped", "model": served.run_name,
                             "engine": served.engine.stats()}, status_code=200 if alive else 503)

    @app.get("/metrics")
    async def metrics() -> Any:
        return Response(server.metrics.render(), media_type=CONTENT_TYPE)

    return guarded(app, options.api_key, options.max_body_bytes), server.loop
