"""Per-request traces of a run: OpenTelemetry spans (written as OTLP JSON) and Chrome trace-event JSON.

Each request is a root span; each step a child (`llm llama-3.1-8b`, `transfer a->b`) with two children of its
own: `queued` (the control message and the worker's queue) and `computing` (or `transferring`). Spans are made
after the run from the records' timestamps (one wall clock: every process is on this machine), through
opentelemetry-sdk, and serialized by hand into OTLP/JSON (hex ids, nanosecond strings), which needs no
protobuf; the Chrome file (Perfetto opens it) has one track per request.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from plait.scheduler.driver import Record, Span

SCOPE = "plait.scheduler"


def otel_spans(records: list[Record], agent: str) -> list[Any]:
    """The records as finished opentelemetry-sdk spans (ReadableSpan), roots first."""
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "plait", "plait.agent": agent}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer(SCOPE)
    for rec in records:
        root = tracer.start_span(f"request {rec.request}", start_time=rec.start_ns,
                                 attributes={"plait.request": rec.request, "plait.error": rec.error or ""})
        in_root = trace.set_span_in_context(root)
        for s in rec.spans:
            step = tracer.start_span(s.name, context=in_root, start_time=s.sent_ns,
                                     attributes={"plait.kind": s.kind, "plait.worker": s.worker})
            in_step = trace.set_span_in_context(step)
            for name, t0, t1 in _phases(s):
                tracer.start_span(name, context=in_step, start_time=t0).end(end_time=t1)
            step.end(end_time=s.done_ns)
        root.end(end_time=rec.end_ns)
    provider.shutdown()
    return list(exporter.get_finished_spans())


def _phases(s: Span) -> list[tuple[str, int, int]]:
    if not s.start_ns:   # a worker that answered without timestamps (an error)
        return []
    work = "transferring" if s.kind == "transfer" else "computing"
    return [("queued", s.sent_ns, max(s.sent_ns, s.start_ns)), (work, s.start_ns, max(s.start_ns, s.end_ns))]


def _value(v: Any) -> dict[str, Any]:
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": str(v)}
    if isinstance(v, float):
        return {"doubleValue": v}
    return {"stringValue": str(v)}


def _attrs(attrs: Any) -> list[dict[str, Any]]:
    return [{"key": k, "value": _value(v)} for k, v in (attrs or {}).items()]


def otlp_json(spans: list[Any]) -> dict[str, Any]:
    """OTLP/JSON (the encoding an OTLP/HTTP collector accepts): resourceSpans > scopeSpans > spans."""
    if not spans:
        return {"resourceSpans": []}
    out = []
    for s in spans:
        ctx = s.get_span_context()
        span = {"traceId": f"{ctx.trace_id:032x}", "spanId": f"{ctx.span_id:016x}", "name": s.name,
                "kind": 1, "startTimeUnixNano": str(s.start_time), "endTimeUnixNano": str(s.end_time),
                "attributes": _attrs(s.attributes), "status": {}}
        if s.parent is not None:
            span["parentSpanId"] = f"{s.parent.span_id:016x}"
        out.append(span)
    return {"resourceSpans": [{"resource": {"attributes": _attrs(spans[0].resource.attributes)},
                               "scopeSpans": [{"scope": {"name": SCOPE}, "spans": out}]}]}


def chrome_json(records: list[Record]) -> dict[str, Any]:
    """Chrome trace-event JSON: a complete event ("X") per request, step and phase, one thread per request."""
    if not records:
        return {"traceEvents": []}
    t0 = min(r.start_ns for r in records)
    events: list[dict[str, Any]] = []

    def event(name: str, tid: int, a: int, b: int, args: dict[str, Any]) -> None:
        events.append({"name": name, "ph": "X", "pid": 1, "tid": tid, "ts": (a - t0) / 1e3,
                       "dur": max(0, b - a) / 1e3, "args": args})

    for r in records:
        events.append({"name": "thread_name", "ph": "M", "pid": 1, "tid": r.request,
                       "args": {"name": f"request {r.request}"}})
        event(f"request {r.request}", r.request, r.start_ns, r.end_ns, {"error": r.error})
        for s in r.spans:
            event(s.name, r.request, s.sent_ns, s.done_ns, {"worker": s.worker, "kind": s.kind})
            for name, a, b in _phases(s):
                event(name, r.request, a, b, {"worker": s.worker})
    return {"traceEvents": events, "displayTimeUnit": "ms"}


def write_traces(records: list[Record], agent: str, path: Path) -> tuple[Path, Path]:
    """`path` (OTLP JSON) and `<path stem>.chrome.json` beside it (Chrome trace events, for Perfetto)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    chrome = path.with_name(path.name.removesuffix(".json") + ".chrome.json")
    path.write_text(json.dumps(otlp_json(otel_spans(records, agent))))
    chrome.write_text(json.dumps(chrome_json(records)))
    return path, chrome
