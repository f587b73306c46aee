"""Prometheus metrics of one server, in its own registry (two servers in one process do not mix counts):
requests by route and status, end-to-end and per-step latency, TTFT and TPOT per LLM call, queue depth,
requests in flight, SLA attainment; engine gauges (batch, KV blocks, preemptions) where an engine is in reach;
steps run again and workers restarted after a worker died."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

# seconds: a tool call of a millisecond to an agent of minutes
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class ServeMetrics:
    def __init__(self, waiting: Callable[[], float], running: Callable[[], float]) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("plait_requests", "Requests answered, by route and HTTP status.",
                                ["route", "status"], registry=r)
        self.latency = Histogram("plait_request_seconds", "End-to-end latency of answered requests (200s).",
                                 ["route"], buckets=BUCKETS, registry=r)
        self.steps = Histogram("plait_step_seconds", "Latency of each step of an agent (driver send to answer).",
                               ["step"], buckets=BUCKETS, registry=r)
        self.ttft = Histogram("plait_llm_ttft_seconds", "Time to first token of each LLM call (engine admission "
                              "to first token).", ["call"], buckets=BUCKETS, registry=r)
        self.tpot = Histogram("plait_llm_tpot_seconds", "Time per output token after the first, per LLM call.",
                              ["call"], buckets=BUCKETS, registry=r)
        self.within_sla = Counter("plait_requests_within_sla", "Answered requests no slower than the agent's SLA "
                                  "p95 target (compare with plait_requests_total for the attainment).",
                                  ["route"], registry=r)
        self.batch = Histogram("plait_engine_batch_size", "Sequences that made a token in an engine step.",
                               buckets=(1, 2, 4, 8, 16, 32, 64, 128), registry=r)
        self.retries = Counter("plait_retries", "Steps run again because a worker died, by the pool of the worker "
                               "that died and the step's kind (llm, embed, tool, ...).", ["pool", "kind"], registry=r)
        self.queue_depth = Gauge("plait_queue_depth", "Admitted requests waiting for a slot.", registry=r)
        self.queue_depth.set_function(waiting)
        self.in_flight = Gauge("plait_in_flight", "Requests holding a slot (running).", registry=r)
        self.in_flight.set_function(running)

    def engine_gauges(self, stats: Callable[[], dict[str, dict[str, Any]]]) -> None:
        """Per-engine figures from `stats()` ({engine name: Engine.stats() dict}) at every scrape."""
        self.registry.register(_EngineCollector(stats))

    def worker_restarts(self, restarts: Callable[[], dict[str, int]]) -> None:
        """plait_worker_restarts_total{pool,worker} from `restarts()` ({worker key: restarts so far})."""
        self.registry.register(_RestartCollector(restarts))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _EngineCollector:
    def __init__(self, stats: Callable[[], dict[str, dict[str, Any]]]) -> None:
        self.stats = stats

    def describe(self) -> list[Any]:
        return []   # nothing at registration: collect() asks the engines, which may be busy or far away

    def collect(self) -> Any:
        rows = self.stats()
        gauges = {"running": "Sequences in the engine's running batch.",
                  "waiting": "Sequences waiting for admission into the engine.",
                  "kv_blocks_used": "KV cache blocks in use.", "kv_blocks": "KV cache blocks in all."}
        counters = {"steps": "Engine steps run.", "preemptions": "Sequences preempted (KV blocks ran out).",
                    "prefill_tokens": "Prompt tokens computed.", "decode_tokens": "Tokens decoded."}
        for key, doc in gauges.items():
            g = GaugeMetricFamily(f"plait_engine_{key}", doc, labels=["engine"])
            for name, row in rows.items():
                g.add_metric([name], float(row[key]))
            yield g
        for key, doc in counters.items():
            c = CounterMetricFamily(f"plait_engine_{key}", doc, labels=["engine"])
            for name, row in rows.items():
                c.add_metric([name], float(row[key]))
            yield c


class _RestartCollector:
    def __init__(self, restarts: Callable[[], dict[str, int]]) -> None:
        self.restarts = restarts

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Any:
        c = CounterMetricFamily("plait_worker_restarts", "Worker processes restarted after they died.",
                                labels=["pool", "worker"])
        for key, n in sorted(self.restarts().items()):
            c.add_metric([key.split("/")[0], key], float(n))
        yield c
