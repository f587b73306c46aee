"""The plan: what `plait plan` decided, as a pydantic model written to plan.json and read by every report."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from plait.planner.placement.problem import Transfer  # a transfer is reported as the solver found it


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
    utilization: float = Field(description="busy fraction of the replicas at the planned rate")
    cost_per_hour: float = Field(description="USD per hour of this stage's replicas, pro rata for slices and tool "
                                             "workers (the plan's total rounds up to whole devices)")


class Candidate(_Model):
    """One configuration the solver considered for a stage (for the plan table)."""

    stage: str
    device: str
    replicas: int
    batch: int
    mode: str
    devices_per_replica: int
    latency_p95_s: float
    cost_per_hour: float
    chosen: bool


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


class SolverStats(_Model):
    status: str
    objective: float
    mip_gap: float
    seconds: float
    variables: int
    constraints: int


class Plan(_Model):
    """The answer to: what is the cheapest fleet that meets the SLA, and where does each operator run?"""

    agent: str
    source: str = Field(description="FILE:AGENT the plan was made from")
    qps: float = Field(description="planned request rate, requests per second")
    sla_p50_s: float | None = None
    sla_p95_s: float | None = None
    price_basis: str = Field(description="cloud ($/hour on demand) or tco (capex over 4 years + power)")
    stages: list[StageChoice]
    fleet: dict[str, int] = Field(description="device type -> devices")
    cost_per_hour: float
    cost_per_million_requests: float
    p50_s: float
    p95_s: float
    critical_path: list[PathStep]
    transfers: list[Transfer] = []
    baselines: list[Baseline] = []
    frontier: list[FrontierPoint] = []
    candidates: list[Candidate] = []
    assumptions: list[str] = []
    solver: SolverStats
