"""What a simulation is asked (SimOptions) and what it answers (SimResult), as pydantic models."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SimOptions(_Model):
    """How to replay a plan: how many requests, at what rate, in what order queues serve them."""

    requests: int = Field(default=2000, ge=1, description="requests to simulate")
    qps: float = Field(default=1.0, gt=0, description="Poisson arrival rate, requests/s (ignored with `arrivals`)")
    seed: int = Field(default=0, description="seed of every draw: arrivals, token counts, loop counts, branch arms")
    policy: Literal["fifo", "edf"] = Field(default="fifo", description="queue order: first in first out, or earliest "
                                                               "deadline (arrival + the SLA's p95) first")
    arrivals: list[float] | None = Field(default=None, description="arrival times (s); overrides qps and requests")
    sla_p95_s: float | None = Field(default=None, gt=0, description="end-to-end target a request must meet, s")
    ttft_s: float | None = Field(default=None, gt=0, description="time from the request's arrival to the first token "
                                 "of every LLM call (its first execution) the request must meet, s")
    tpot_s: float | None = Field(default=None, gt=0, description="time per output token every LLM call must meet, s")
    warmup: float = Field(default=0.0, ge=0, lt=1, description="fraction of the first requests left out of the figures")


class Percentiles(_Model):
    """p50/p95/p99 and mean of a sample, seconds."""

    n: int
    mean: float
    p50: float
    p95: float
    p99: float


class CallStats(_Model):
    """One LLM call site: time to first token (from the call's issue) and time per output token."""

    site: str = Field(description="the call's stage name, e.g. 'prefill:llama-3.1-8b@rag.py:20'")
    loc: str
    llm: bool = Field(default=True, description="a text LLM call (the TTFT target applies); False: speech or TTS")
    ttft: Percentiles = Field(description="from the call's issue (its inputs ready) to its first token, every execution")
    tpot: Percentiles = Field(description="(last token - first token) / (output tokens - 1), calls of 2+ tokens")
    first_token: Percentiles = Field(description="from the request's arrival to this call's first token in the "
                                                 "request (its first execution; upstream stages and queueing "
                                                 "included): what the TTFT target bounds")


class PoolStats(_Model):
    """One pool over the measured window."""

    id: str
    kind: str
    device: str = Field(description="device type; 'TYPE/host' for a pool on the host CPUs of TYPE's servers")
    replicas: int
    executions: int = Field(description="service executions (batches, engine steps)")
    jobs: int = Field(description="jobs that entered the pool (calls, sequences)")
    utilization: float = Field(description="busy replica-seconds / (replicas x simulated seconds)")
    wait: Percentiles = Field(description="queue wait per job: arrival at the pool to the start of its service")
    mean_batch: float = Field(description="mean items per execution (sequences per step for LLM engines)")
    max_batch: int
    preemptions: int = Field(default=0, description="sequences preempted for KV blocks (recomputed later)")
    littles_l: float = Field(description="time-average jobs in the pool")
    littles_lambda_w: float = Field(description="arrival rate x mean time in the pool (= L by Little's law)")


class SimResult(_Model):
    """The figures `plait simulate` prints."""

    requests: int = Field(description="requests measured (after the warm-up)")
    simulated_s: float = Field(description="simulated seconds from the first to the last measured arrival's end")
    wall_s: float = Field(description="seconds the simulation took to run")
    policy: str
    offered_qps: float
    e2e: Percentiles
    calls: list[CallStats]
    pools: list[PoolStats]
    within_sla: float | None = Field(description="share of requests meeting every target given (None: no target)")
    goodput_qps: float | None = Field(description="requests per second within the SLA")
    notes: list[str] = []
