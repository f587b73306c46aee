"""The plan: what `plait plan` decided, as a pydantic model written to plan.json and read by every report."""

from __future__ import annotations

import hashlib
import json
from pathlib import PurePath
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from plait.planner.catalog.prices import DevicePrice
from plait.planner.endpoint import RemoteEndpoint
from plait.planner.placement.problem import Transfer  # a transfer is reported as the solver found it
from plait.sdk.graph import AgentGraph


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StageChoice(_Model):
    """Where one stage runs, and what the cost model predicts for it there."""

    stage: str = Field(description="stage name, e.g. 'llm_1.decode'")
    description: str = Field(description="what the stage does, in words")
    ops: list[str] = Field(description="the op-dialect operators the stage groups")
    model: str | None = Field(None, description="the model the stage runs (None for tools and searches)")
    figures: dict[str, float] = Field(default_factory=dict, description=(
        "the planning figures of the stage's op as the IR carries them (means): prompt_tokens, max_tokens, "
        "output_tokens, k, latency_ms, ...; a check that the plan costs what the agent declared"))
    device: str = Field(description="device type from the catalog")
    replicas: int = Field(ge=1)
    devices_per_replica: int = Field(ge=1, description="tensor-parallel degree")
    share: float = Field(1.0, gt=0, le=1, description="fraction of each device a replica occupies (slices, "
                                                      "tool workers' cores)")
    batch: int = Field(ge=1, description="maximum batch")
    mode: str = Field(description="eager or graph (CUDA graphs)")
    visits: float = Field(description="expected executions per request (loops and branches folded in)")
    service_s: float = Field(description="seconds per execution at the chosen batch")
    latency_p50_s: float = Field(description="seconds per request in this stage at p50, queueing included")
    latency_p95_s: float = Field(description="seconds per request in this stage at p95, queueing included")
    ttft_s: float | None = Field(None, description="an LLM call's prefill: the analytic TTFT bound, from the "
                                 "request's arrival to the call's first token (upstream stages, queueing and "
                                 "the prefill, at p95)")
    utilization: float = Field(description="busy fraction of the replicas at the planned rate")
    cost_per_hour: float = Field(description="USD per hour of this stage's replicas, pro rata for slices and tool "
                                             "workers (the plan's total rounds up to whole devices)")


class Candidate(_Model):
    """One row of the plan table: a stage's chosen configuration, or the plan re-solved with the stage pinned to
    another device type (its configuration there, and the whole plan's $/hour that results)."""

    stage: str
    device: str
    replicas: int = Field(description="0 on an infeasible row")
    batch: int
    mode: str
    devices_per_replica: int = Field(description="tensor-parallel degree (0 on an infeasible row)")
    share: float = Field(default=1.0, description="fraction of each device one replica holds (slices, host cores)")
    latency_p95_s: float
    cost_per_hour: float = Field(description="USD per hour of the pool serving the stage (whole pool, once per "
                                             "pool; pro rata for slices and tool workers; 0 on host CPUs)")
    chosen: bool
    pool: str = Field(default="", description="chosen rows: the pool id in `pools`")
    role: str = Field(default="", description="unified, prefill, decode (LLM pools); encoder, search, tool")
    host: bool = Field(default=False, description="runs on the host CPUs of the device type's servers")
    cores: int = Field(default=0, description="CPU cores one replica holds (tool workers, host CPUs; 0 elsewhere)")
    plan_cost_per_hour: float | None = Field(default=None, description=(
        "USD per hour of the whole plan with this stage on this device type (chosen rows: the plan's); None: no "
        "plan meets the targets with it there"))
    note: str = Field(default="", description="infeasible rows: why, in words")


class PathStep(_Model):
    """One stage on the critical path, with the time it adds."""

    stage: str
    device: str
    p50_s: float
    p95_s: float
    transfer_s: float = 0.0


class Baseline(_Model):
    """The cheapest fleet made of one device type only (stages that cannot run there keep their best)."""

    device: str
    feasible: bool
    cost_per_hour: float | None = None
    p95_s: float | None = None
    reason: str = ""


class FrontierPoint(_Model):
    """The cheapest fleet for one SLA target (None where no fleet meets it)."""

    sla_p95_s: float
    cost_per_hour: float | None
    p95_s: float | None = Field(default=None, description="the point's plan: analytic p95")
    simulated_p95_s: float | None = Field(default=None, description="the point's plan replayed (at most 1,000 "
                                          "requests, seed 0); None without simulation")
    pools: list[Pool] = Field(default_factory=list, exclude=True, description="the point's pools, to simulate "
                              "them (not written to plan.json)")


class SolverStats(_Model):
    status: str
    objective: float
    mip_gap: float
    seconds: float
    variables: int
    constraints: int


def graph_hash(graph: AgentGraph) -> str:
    """sha256 of the traced graph's compact JSON: plan.json's `graph_hash`, which readers compare.

    The agent file is named by its file name, not its folder: the same agent copied elsewhere (a container's
    mounted ConfigMap, another checkout) is the same graph; its locations (`rag.py:17`) already say no more."""
    return hashlib.sha256(json.dumps(_file_names(graph.to_dict())).encode()).hexdigest()


def _file_names(data: Any) -> Any:
    """`data` with every graph's `source` cut to its file name: the sub-agents' graphs nested in it too."""
    if isinstance(data, dict):
        return {k: PurePath(v).name if k == "source" and isinstance(v, str) and v else _file_names(v)
                for k, v in data.items()}
    if isinstance(data, list):
        return [_file_names(v) for v in data]
    return data


PLAN_FORMAT = "plait.plan/2"
"""plan.json's format: bump it when a field's meaning changes, so an older reader refuses the file."""


class CallSite(_Model):
    """One call of the agent that a pool serves: the stage it came from and how often a request makes it."""

    stage: str = Field(description="the planner's stage name, e.g. 'decode:llama-3.1-8b@rag.py:20'")
    loc: str = Field(description="the user's file:line of the call")
    visits: float = Field(ge=0, description="expected executions per request")


class Pool(_Model):
    """Replicas of one configuration running one kind of kernel: the unit every later layer deploys.

    The serving model (DESIGN.md, "The serving model"): an LLM pool is unified (prefill and decode in one
    engine with continuous batching and chunked prefill) or one side of a split pair (prefill, decode) with
    the KV cache moved between them. Call sites that use the same model may share a pool. placed.mlir's
    `pool` attributes name these ids; `plait simulate`, `plait run` and the CRD read only this list.
    """

    id: str = Field(description="unique within the plan, e.g. 'llm-llama-3.1-8b-0'; placed.mlir names it")
    kind: Literal["llm", "encoder", "search", "tool"] = Field(description="the kernel the replicas run")
    model: str | None = Field(default=None, description="catalog model (llm, encoder); the index for search; None for tools")
    role: Literal["unified", "prefill", "decode"] | None = Field(
        default=None, description="LLM pools only: unified, or one side of a split pair")
    peer: str | None = Field(default=None, description="split pools: the id of the other side (KV cache moves there)")
    device: str = Field(description="device type from the catalog (a CPU server type for tools)")
    devices_per_replica: int = Field(default=1, ge=1, description="whole devices one replica occupies")
    tensor_parallel: int = Field(default=1, ge=1, description="tensor-parallel degree (= devices_per_replica for LLMs)")
    slice: Literal["none", "mig", "mps"] = Field(default="none", description="how a fraction of a device is realized")
    slice_fraction: float = Field(default=1.0, gt=0, le=1, description="fraction of a device a replica holds")
    mig_profile: str | None = Field(default=None, description="slice='mig': the MIG profile, e.g. '3g.40gb'")
    replicas: int = Field(ge=1)
    batch: int = Field(default=1, ge=1, description="most items one execution batches (encoders, searches, prefill)")
    max_sequences: int | None = Field(default=None, ge=1, description="LLM pools: concurrent sequences per replica "
                                                             "(bounded by KV memory at the p95 final context)")
    expected_sequences: float | None = Field(default=None, ge=0, description=(
        "LLM pools: sequences running per replica at the planned rate (rate x time in the engine, Little's law); "
        "the step time is costed at this batch, not at max_sequences"))
    kv_blocks: int | None = Field(default=None, ge=1, description="LLM pools: KV-cache blocks per replica")
    block_tokens: int | None = Field(default=None, ge=1, description="LLM pools: tokens per KV block")
    prefill_chunk_tokens: int | None = Field(default=None, ge=1, description="unified pools: prompt tokens per step")
    runtime: Literal["cuda", "rocm", "cpu", "remote"] = Field(default="cuda", description=(
        "what runs the replicas: plait's engine on cuda, rocm or cpu; remote: another engine only (e.g. vLLM on "
        "Gaudi), which `plait plan --runnable-only` avoids"))
    cpu_cores: int = Field(default=0, ge=0, description="whole CPU cores per replica (tool workers; host cores)")
    host_cpu: bool = Field(default=False, description=(
        "tool workers on the host CPUs of `device`'s servers, which the fleet rents for other pools (no device "
        "of their own)"))
    endpoint: RemoteEndpoint | None = Field(default=None, description=(
        "runtime remote, an LLM pool that is an OpenAI-compatible endpoint (the inventory's remote list): its URL, "
        "served model name, key variable, price and measured figures; it takes whole calls, text in and out"))
    call_sites: list[CallSite] = Field(description="the calls this pool serves")


class SimCheck(_Model):
    """`plait plan`'s check of its chosen plan by simulation (`plait simulate`'s model, a fixed seed)."""

    requests: int = Field(description="requests simulated")
    seed: int
    p50_s: float = Field(description="simulated end-to-end p50")
    p95_s: float = Field(description="simulated end-to-end p95")
    ttft_p95_s: float | None = Field(default=None, description="the slowest LLM call's simulated TTFT p95")
    tpot_p95_s: float | None = Field(default=None, description="the slowest LLM call's simulated TPOT p95")
    analytic_ttft_p95_s: float | None = Field(default=None, description=(
        "the slowest LLM call's analytic TTFT bound, from the request's arrival (the planner's TTFT figure)"))
    ttft_target_s: float | None = Field(default=None, description="the TTFT target checked, if any")
    tpot_target_s: float | None = Field(default=None, description="the TPOT target checked, if any")
    within_sla: float | None = Field(default=None, description="share of simulated requests meeting every target")
    misses: list[str] = Field(default_factory=list, description="targets the final plan misses in simulation")
    replans: list[str] = Field(default_factory=list, description="one line per re-plan with a tightened target")
    busiest: str | None = Field(default=None, description="where the plan is short, when it still misses")


class Plan(_Model):
    """The answer to: what is the cheapest fleet that meets the SLA, and where does each operator run?"""

    format: str = Field(default=PLAN_FORMAT, description="plan.json's format version")
    plait_version: str = Field(default="", description="the plait version that made the plan")
    graph_hash: str = Field(default="", description="sha256 of the traced graph's JSON: a stale plan is refused later")
    agent: str
    source: str = Field(description="FILE:AGENT the plan was made from")
    scale: str | None = Field(default=None, description=(
        "the catalog scale the agent's dense LLMs were planned at (`plait plan --scale tiny`: llama-3.1-8b@tiny, "
        "what runs without a checkpoint); None: full size. graph_hash is of the graph at this scale"))
    qps: float = Field(description="planned request rate, requests per second")
    sla_p50_s: float | None = None
    sla_p95_s: float | None = None
    sla_ttft_s: float | None = Field(default=None, description="time-to-first-token target of every LLM call, s")
    sla_tpot_s: float | None = Field(default=None, description="time-per-output-token target of every LLM call, s")
    price_basis: str = Field(description="cloud ($/hour on demand) or tco (capex over 4 years + power)")
    stages: list[StageChoice]
    pools: list[Pool] = Field(default_factory=list, description="the pool contract: what runs, per pool")
    decisions: list[str] = Field(default_factory=list, description=(
        "why the LLM pools are unified or split: the cheapest plan of the other kind, solved, in words"))
    fleet: dict[str, int] = Field(description="device type -> devices")
    cost_per_hour: float
    cost_per_million_requests: float
    p50_s: float
    p95_s: float
    ttft_p95_s: float | None = Field(default=None, description=(
        "predicted TTFT p95 of the slowest LLM call: from the request's arrival to its first token (upstream stages, queueing, prefill)"))
    tpot_s: float | None = Field(default=None, description=(
        "predicted time per output token of the slowest LLM call: its decode's step time at the planned batch"))
    p95_bound_s: float | None = Field(default=None, description="the critical path's sum of stage p95s and "
                                      "transfers: what the solver keeps within the SLA (p95_s is the estimate)")
    p50_bound_s: float | None = Field(default=None, description="the p50 clock the solver keeps within the SLA's p50 "
                                      "target: stage medians with every branch arm at least at its expected share "
                                      "(p50_s is the estimate: arms at the median request's count)")
    critical_path: list[PathStep]
    transfers: list[Transfer] = []
    baselines: list[Baseline] = []
    frontier: list[FrontierPoint] = []
    candidates: list[Candidate] = []
    candidates_note: str = Field(default="", description="how the plan table's other rows were chosen and solved")
    assumptions: list[str] = []
    solver: SolverStats
    prices: list[DevicePrice] = Field(default_factory=list, description=(
        "$/hour of each device type in the fleet on the plan's price basis, with its source and any flag"))
    max_device_types: int | None = Field(default=None, description="the --max-device-types limit, if one was set")
    simulated: SimCheck | None = Field(default=None, description=(
        "the plan replayed by simulation, beside the analytic figures (None: plait plan --no-simulate)"))
