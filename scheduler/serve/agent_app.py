"""The agent server's HTTP API over a driver: POST /v1/agents/{name}/invoke (JSON in and out, checked against
the agent's signature), GET /v1/agents, GET /healthz (every worker pinged), GET /metrics (Prometheus).

Each request is admitted (bounded: 503 with Retry-After past it), then runs on a driver thread with a cancel
event. Its deadline (the body's `timeout_s`, else the server's, by default the agent's SLA p95) covers the
wait and the run: when it passes, or the client disconnects, the event is set, the driver sends none of its
further steps, and the client gets 504. Its slot is freed only when its driver thread ends, so the bound on
concurrent work holds even for requests already answered with a timeout.

With `"stream": true` the answer is server-sent events: `token` events carrying the text of the LLM call whose
answer is the agent's output as it is generated, then one `done` event with the whole answer (or one `error`
event: a deadline, a failed step).
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, create_model

from plait.scheduler.driver import Record
from plait.scheduler.serve.admission import Admission, QueueFull
from plait.scheduler.serve.metrics import CONTENT_TYPE, ServeMetrics
from plait.scheduler.serve.security import error_body, guarded, validation_error
from plait.sdk.graph import AgentGraph


def _wav_file(value: str) -> str:
    """An audio input: the path of a PCM WAV file on the server's machine (workers read it; audio bytes do not
    travel as JSON). Checked here, so a wrong one gets a 422 before any step runs."""
    from plait.codegen.errors import CodegenError
    from plait.codegen.kernels.audio import read_wav

    path = Path(value)
    if not path.is_file():
        raise ValueError(f"{value[:80]!r} is not a file on the server's machine (an audio input is the path of a "
                         "PCM WAV file there)")
    try:
        read_wav(path)
    except CodegenError as err:
        raise ValueError(str(err).splitlines()[0]) from None
    return str(path.resolve())


# A parameter's value type -> what its JSON must be.
JSON_TYPES: dict[str, Any] = {"text": str, "bool": bool, "texts": list[str], "json": Any,
                              "audio": Annotated[str, AfterValidator(_wav_file)], "docs": list[str],
                              "vec": list[float]}


@dataclass(frozen=True)
class AgentServeOptions:
    deadline_s: float            # a request's deadline when its body gives no timeout_s
    max_timeout_s: float = 600.0  # the most a body's timeout_s may ask for
    concurrency: int = 4         # requests the driver runs at once
    max_queue: int = 16          # requests admitted to wait for a slot; past it: 503
    policy: str = "fifo"         # the waiting requests' order: fifo or edf (earliest deadline first)
    api_key: str | None = None
    max_body_bytes: int = 1 << 20
    sla_s: float | None = None   # the agent's SLA p95 target (attainment metric)


def body_model(graph: AgentGraph, max_timeout_s: float) -> type[BaseModel]:
    """The invoke body: {"inputs": {<each parameter>: value}, "timeout_s": seconds (optional)}; no other keys."""
    strict = ConfigDict(extra="forbid")
    fields: dict[str, Any] = {p.name: (JSON_TYPES.get(str(p.type), Any), ...) for p in graph.params}
    inputs = create_model(f"{graph.agent_name}_inputs", __config__=strict, **fields)
    return create_model(f"{graph.agent_name}_invoke", __config__=strict, inputs=(inputs, ...),
                        timeout_s=(float | None, Field(None, gt=0, le=max_timeout_s)), stream=(bool, False))


class AgentServer:
    """The state behind the routes: admission, the driver's threads, metrics, the service-time estimate."""

    def __init__(self, graph: AgentGraph,
                 run: Callable[..., Record],
                 health: Callable[[], dict[str, Any]], options: AgentServeOptions,
                 engines: Callable[[], dict[str, Any]] = dict, restarts: Callable[[], dict[str, int]] = dict) -> None:
        self.graph, self.run, self.health, self.options, self.engines = graph, run, health, options, engines
        self.restarts = restarts
        self.body = body_model(graph, options.max_timeout_s)
        self.admission = Admission(options.concurrency, options.max_queue, options.policy)
        self.pool = ThreadPoolExecutor(max_workers=options.concurrency, thread_name_prefix="plait-serve")
        self.metrics = ServeMetrics(lambda: self.admission.waiting, lambda: self.admission.running)
        self.metrics.engine_gauges(self._engines)
        self.metrics.worker_restarts(restarts)
        self.statuses: Counter[str] = Counter()   # answers by HTTP status, for the summary at stop
        self.retried: Counter[tuple[str, str]] = Counter()   # steps run again, by (pool, kind)
        self.service_s = 1.0   # a moving mean of requests' run time: the Retry-After estimate
        self.route = f"/v1/agents/{graph.agent_name}/invoke"

    def _engines(self) -> dict[str, dict[str, Any]]:
        """Each LLM worker's engine figures, from its answer to a ping (at every scrape; an engine worker
        answers between steps)."""
        return {key: answer["engine"] for key, answer in self.engines().items()
                if isinstance(answer, dict) and isinstance(answer.get("engine"), dict)}

    def retry_after_s(self) -> int:
        """About when a slot frees up: the queue ahead, served `concurrency` at a time, at the mean run time."""
        ahead = self.admission.waiting + 1
        return max(1, math.ceil(self.service_s * ahead / self.options.concurrency))

    def summary(self) -> str:
        """What the server did, said at stop: answers by status, workers restarted, steps run again."""
        answered = ", ".join(f"{n} x {s}" for s, n in sorted(self.statuses.items())) or "none"
        restarts = {k: n for k, n in self.restarts().items() if n}
        retried = ", ".join(f"{n} {kind} on {pool}" for (pool, kind), n in sorted(self.retried.items()))
        return (f"answered: {answered}; worker restarts: {sum(restarts.values())}"
                + (f" ({', '.join(f'{k} x{n}' for k, n in sorted(restarts.items()))})" if restarts else "")
                + f"; steps run again: {sum(self.retried.values())}" + (f" ({retried})" if retried else ""))

    def answer(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
        self.metrics.requests.labels(self.route, str(status)).inc()
        self.statuses[str(status)] += 1
        return JSONResponse(body, status_code=status, headers=headers)

    def _finished(self, future: asyncio.Future[Record]) -> None:
        """On the loop, when a driver thread ends (answered or not): free the slot, record the steps."""
        self.admission.release()
        if future.cancelled() or future.exception() is not None:
            return
        record = future.result()
        for retry in record.retries:
            self.metrics.retries.labels(retry.pool, retry.kind).inc()
            self.retried[retry.pool, retry.kind] += 1
        self.service_s = 0.8 * self.service_s + 0.2 * record.seconds
        for name, seconds in record.steps:
            self.metrics.steps.labels(name).observe(seconds)
        for call, ttft, tpot, _ in record.llm:
            self.metrics.ttft.labels(call).observe(ttft)
            if tpot is not None:
                self.metrics.tpot.labels(call).observe(tpot)

    async def invoke(self, name: str, request: Request) -> Response:
        loop = asyncio.get_running_loop()
        start = loop.time()
        agent = self.graph.agent_name
        if name != agent:
            return self.answer(404, error_body(f"no agent {name!r} here; this server runs {agent!r} "
                                               f"(POST /v1/agents/{agent}/invoke)", code="agent_not_found"))
        try:
            payload = json.loads(await request.body())
        except ValueError as err:
            return self.answer(422, error_body(f"the request body is not JSON: {err}"))
        try:
            body = self.body.model_validate(payload)
        except ValidationError as err:
            problem = validation_error(err)
            names = [p.name for p in self.graph.params]
            if isinstance(payload, dict) and "inputs" not in payload and set(payload) & set(names):
                problem["error"]["message"] += ("\n  To fix: put the agent's inputs under \"inputs\": "
                                                + json.dumps({"inputs": dict.fromkeys(names, "...")}))
            return self.answer(422, problem)
        timeout = body.timeout_s or self.options.deadline_s   # type: ignore[attr-defined]
        deadline = start + timeout
        try:
            await asyncio.wait_for(self.admission.acquire(deadline), timeout)
        except QueueFull:
            wait = self.retry_after_s()
            return self.answer(503, error_body(
                f"server busy: {self.admission.running} requests running and {self.admission.waiting} waiting "
                f"(--max-queue {self.options.max_queue}); retry in about {wait} s", "server_busy"),
                {"Retry-After": str(wait)})
        except TimeoutError:
            return self.answer(504, error_body(f"deadline of {timeout:g} s passed while the request waited for a "
                                               "slot; it never started", "timeout"))
        cancel = threading.Event()
        inputs = body.inputs.model_dump()   # type: ignore[attr-defined]
        pieces: asyncio.Queue[str | None] = asyncio.Queue()

        def take(text: str) -> None:   # on the driver's thread: hand a streamed piece to the loop
            loop.call_soon_threadsafe(pieces.put_nowait, text)

        # started here, not in the stream's generator: a client gone before the stream starts still frees the slot
        # under edf the engines order waiting LLM calls by the request's deadline too (time.time(): the workers' clock)
        due = time.time() + (deadline - loop.time()) if self.options.policy == "edf" else None
        future = loop.run_in_executor(self.pool, self.run, inputs, cancel,
                                      take if body.stream else None, due)  # type: ignore[attr-defined]
        future.add_done_callback(self._finished)
        if body.stream:   # type: ignore[attr-defined]
            future.add_done_callback(lambda _: pieces.put_nowait(None))   # after every piece: queued before
            return StreamingResponse(self._events(future, pieces, cancel, deadline, timeout, start),
                                     media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
        while not future.done():
            remaining = deadline - loop.time()
            if remaining <= 0:
                cancel.set()
                return self.answer(504, error_body(
                    f"deadline of {timeout:g} s passed; the request was cancelled (no further step of it runs). "
                    "To allow longer: send a larger timeout_s, or start the server with --deadline-s", "timeout"))
            await asyncio.wait({future}, timeout=min(0.1, remaining))
            if not future.done() and await request.is_disconnected():
                cancel.set()
                return self.answer(499, error_body("the client disconnected; the request was cancelled"))
        record = future.result()
        if record.error is not None:
            return self.answer(500, error_body(f"the agent failed: {record.error}", "agent_error"))
        return self.answer(200, self._answered(record, loop.time() - start))

    def _answered(self, record: Record, elapsed: float) -> dict[str, Any]:
        self.metrics.latency.labels(self.route).observe(elapsed)
        if self.options.sla_s is not None and elapsed <= self.options.sla_s:
            self.metrics.within_sla.labels(self.route).inc()
        return {"agent": self.graph.agent_name, "output": record.output, "request": record.request,
                "seconds": round(elapsed, 4), "steps": [{"step": n, "seconds": round(s, 4)} for n, s in record.steps]}

    async def _events(self, future: asyncio.Future[Record], pieces: asyncio.Queue[str | None],
                      cancel: threading.Event, deadline: float, timeout: float, start: float) -> AsyncIterator[str]:
        """The streamed answer: `token` events as the final LLM call generates, then `done` (or `error`). A
        client that leaves cancels this generator, and with it the request."""
        loop = asyncio.get_running_loop()
        status = "499"
        try:
            while (remaining := deadline - loop.time()) > 0:
                try:
                    piece = await asyncio.wait_for(pieces.get(), remaining)
                except TimeoutError:
                    continue
                if piece is None:
                    break
                yield _sse("token", {"text": piece})
            else:
                cancel.set()
                status = "504"
                yield _sse("error", error_body(f"deadline of {timeout:g} s passed; the request was cancelled (no "
                                               "further step of it runs)", "timeout"))
                return
            record = future.result()
            if record.error is not None:
                status = "500"
                yield _sse("error", error_body(f"the agent failed: {record.error}", "agent_error"))
                return
            status = "200"
            yield _sse("done", self._answered(record, loop.time() - start))
        finally:
            if status == "499":
                cancel.set()
            self.metrics.requests.labels(self.route, status).inc()
            self.statuses[status] += 1

    def describe(self) -> dict[str, Any]:
        return {"agents": [{"name": self.graph.agent_name, "route": self.route,
                            "inputs": {p.name: str(p.type) for p in self.graph.params},
                            "deadline_s": self.options.deadline_s, "policy": self.options.policy}]}

    async def healthz(self) -> Any:
        workers = await asyncio.get_running_loop().run_in_executor(None, self.health)
        ok = all(isinstance(v, dict) for v in workers.values())
        return JSONResponse({"status": "ok" if ok else "unhealthy", "workers": workers},
                            status_code=200 if ok else 503)


def _sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


def create_agent_app(server: AgentServer) -> Any:
    """The ASGI app: the routes behind the API key and the body limit."""
    app = FastAPI(title=f"plait agent {server.graph.agent_name}", docs_url=None, redoc_url=None)

    @app.post("/v1/agents/{name}/invoke")
    async def invoke(name: str, request: Request) -> Any:
        return await server.invoke(name, request)

    @app.get("/v1/agents")
    async def agents() -> Any:
        return server.describe()

    @app.get("/healthz")
    async def healthz() -> Any:
        return await server.healthz()

    @app.get("/metrics")
    async def metrics() -> Any:   # rendered off the loop: the engine figures come from pinging the workers
        text = await asyncio.get_running_loop().run_in_executor(None, server.metrics.render)
        return Response(text, media_type=CONTENT_TYPE)

    return guarded(app, server.options.api_key, server.options.max_body_bytes)
