"""The AgentDeployment custom resource (group plait.dev, version v1alpha1): spec and status as pydantic models.

Field names are camelCase on the wire, as Kubernetes objects are, and snake_case in Python
(`populate_by_name`). The CRD's openAPIV3Schema is generated from these models, so a field added here
is a field the API server accepts. The pools mirror plan.json's `pools` (planner.plan.Pool), plus what
only a cluster needs: the engine that serves an LLM pool, the node selector and the resource requests.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

GROUP = "plait.dev"
VERSION = "v1alpha1"
KIND = "AgentDeployment"
PLURAL = "agentdeployments"
SINGULAR = "agentdeployment"
SHORT_NAMES = ["agentdep"]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True)


class AgentSource(_Wire):
    """Where the agent's code is: a file in a ConfigMap (with the device programs beside it)."""

    file: str = Field(description="the agent file's name, a key of the ConfigMap, e.g. 'rag.py'")
    name: str = Field(description="the agent function's name, e.g. 'answer'")
    config_map: str | None = Field(default=None, description=(
        "ConfigMap holding the agent file and the device programs (default: '<deployment>-agent', made by "
        "`plait submit`)"))


class SLASpec(_Wire):
    """The latency targets the plan was made for, milliseconds; unset fields are not constrained."""

    p50_ms: float | None = Field(default=None, gt=0)
    p95_ms: float | None = Field(default=None, gt=0)
    ttft_ms: float | None = Field(default=None, gt=0)
    tpot_ms: float | None = Field(default=None, gt=0)


class Resources(_Wire):
    """A container's resource requests and limits, Kubernetes quantities ('2', '8Gi', '1')."""

    requests: dict[str, str] = Field(default_factory=dict)
    limits: dict[str, str] = Field(default_factory=dict)


class PoolSpec(_Wire):
    """One pool of plan.json, as a StatefulSet runs it: replicas of one configuration and one kind of kernel."""

    id: str = Field(description="the pool id from plan.json, e.g. 'llm-llama-3.1-8b-0'")
    kind: Literal["llm", "encoder", "search", "tool"]
    model: str | None = Field(default=None, description="catalog model (llm, encoder); the index for search")
    role: Literal["unified", "prefill", "decode"] | None = Field(default=None, description="LLM pools only")
    peer: str | None = Field(default=None, description="split pools: the other side's pool id")
    device: str = Field(description="device type from the catalog")
    replicas: int = Field(ge=0)
    tensor_parallel: int = Field(default=1, ge=1)
    devices_per_replica: int = Field(default=1, ge=1)
    slice: Literal["none", "mig", "mps"] = "none"
    mig_profile: str | None = Field(default=None, description="slice 'mig': the profile, e.g. '3g.40gb'")
    cpu_cores: int = Field(default=0, ge=0, description="whole CPU cores per replica (tool workers, host cores)")
    engine: Literal["plait", "vllm"] = Field(default="plait", description=(
        "what serves an LLM pool: plait's engine, or a vLLM OpenAI server (unified role only; the router "
        "reaches it as a remote pool)"))
    image: str | None = Field(default=None, description="container image override for this pool")
    node_selector: dict[str, str] = Field(default_factory=dict, description=(
        "node labels the replicas need, e.g. {'nvidia.com/gpu.product': 'NVIDIA-H100-80GB-HBM3'}"))
    resources: Resources = Field(default_factory=Resources)


class AgentDeploymentSpec(_Wire):
    """What to run: the agent, the plan's pools, and the SLA and rate the plan was made for."""

    agent: AgentSource
    image: str = Field(default="plait:latest", description="container image of the workers and the router")
    plan_hash: str = Field(default="", description="sha256 of plan.json: a changed plan rolls the pools")
    pools: list[PoolSpec] = Field(min_length=1)
    sla: SLASpec = Field(default_factory=SLASpec)
    rate_qps: float = Field(gt=0, description="the request rate the plan was made for")
    weights: str | None = Field(default=None, pattern=r"^(pvc|image):.+$", description=(
        "where LLM pools read their checkpoints (/models/<model>) and search pools their indexes "
        "(/models/indexes/<name>): 'pvc:CLAIM' (mounted read-only) or 'image:REF' (an init container copies its "
        "/models); none: LLMs run at a scaled-down size with random weights"))


class Condition(_Wire):
    """A status condition, as Kubernetes objects carry them."""

    type: Literal["Planned", "Deploying", "Ready", "Degraded"]
    status: Literal["True", "False", "Unknown"]
    reason: str = ""
    message: str = ""
    last_transition_time: str | None = None


class PoolStatus(_Wire):
    id: str
    replicas: int = 0
    ready_replicas: int = 0


class AgentDeploymentStatus(_Wire):
    """What runs: conditions, ready replicas per pool, the router's endpoint, the generation last seen."""

    conditions: list[Condition] = Field(default_factory=list)
    pools: list[PoolStatus] = Field(default_factory=list)
    endpoint: str | None = Field(default=None, description="the router's in-cluster URL")
    observed_generation: int | None = None
