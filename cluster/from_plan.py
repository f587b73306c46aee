"""A plan folder (`plait plan --out DIR`) and its agent as what a cluster runs: the AgentDeployment's spec and
the ConfigMap of the agent file, plan.json, placed.mlir and one device program per pool.

    bundle = deployment_bundle("examples/rag.py:answer", Path("out/plan"), name="rag")
    bundle.spec          # AgentDeploymentSpec: a PoolSpec per plan pool (node selector, resource requests)
    bundle.config_map    # the ConfigMap object the containers mount (cluster.entrypoint reads it)

Nothing here talks to an API server; cluster.submit does.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plait.cluster.devices import MEMORY_PER_CORE_GI, device_nodes
from plait.cluster.spec import AgentDeploymentSpec, AgentSource, PoolSpec, Resources, SLASpec
from plait.planner.plan import Plan, Pool
from plait.sdk.errors import PlaitError

CONFIG_MAP_LIMIT = 1 << 20   # bytes: etcd's limit on one object, which a ConfigMap's data must stay under
_OVERHEAD = 16 << 10         # room for the ConfigMap's metadata and the JSON around its values
PLAN_FILES = ("plan.json", "placed.mlir")
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,50}[a-z0-9])?$")
APP_LABEL = "app.kubernetes.io/managed-by"


class BundleError(PlaitError):
    """The plan folder or agent cannot become an AgentDeployment (missing files, a stale plan, too large)."""


@dataclass(frozen=True)
class Bundle:
    """What `plait submit` sends: the custom resource's spec and the ConfigMap its containers mount."""

    name: str
    spec: AgentDeploymentSpec
    config_map: dict[str, Any]


def program_key(pool_id: str) -> str:
    """The ConfigMap key of a pool's device program (keys are flat: no folders)."""
    return f"{pool_id}.program.json"


def config_map_name(deployment: str) -> str:
    return f"{deployment}-agent"


def default_name(agent: str) -> str:
    """A deployment name from the agent's function name: DNS-1123 (lowercase, dashes)."""
    return re.sub(r"[^a-z0-9-]+", "-", agent.lower()).strip("-")[:52] or "agent"


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise BundleError(f"deployment name {name!r} is not a Kubernetes name\n  To fix: pass --name with lowercase "
                          "letters, digits and dashes, starting and ending with a letter or digit, at most 52 "
                          "characters (its children add suffixes).")
    return name


def deployment_bundle(target: str, plan_dir: Path, name: str | None = None,
                      image: str = "plait:latest", weights: str | None = None, vllm: bool = False) -> Bundle:
    """The AgentDeployment spec and ConfigMap of FILE:AGENT planned in `plan_dir`; BundleError on bad input.

    A pool of the plan that is an endpoint (the inventory's remote list, outside the cluster) gets no pods: the
    router forwards its calls there. A pool of a device only another engine runs (runtime remote, e.g. Gaudi)
    runs vLLM's OpenAI server, and with `vllm` so do the plan's other unified LLM pools."""
    from plait.codegen.build import build_programs
    from plait.codegen.program import dump_program
    from plait.ir.module import parse_module
    from plait.planner.catalog import load_catalog
    from plait.sdk.loader import split_target

    files = {f: plan_dir / f for f in PLAN_FILES}
    for f, path in files.items():
        if not path.is_file():
            raise BundleError(f"--plan {plan_dir}: no {f}\n  To fix: write one with "
                              f"`plait plan {target} --out {plan_dir}`.")
    plan_text = files["plan.json"].read_text()
    plan = Plan.model_validate_json(plan_text)
    _check_fresh(target, plan, str(files["plan.json"]))
    path, agent = split_target(target)
    programs = build_programs(parse_module(files["placed.mlir"].read_text()), plan, load_catalog())
    file = Path(path).name
    # the containers load the agent from the ConfigMap's folder: the programs name it by its key
    data = {file: Path(path).read_text(), "plan.json": plan_text, "placed.mlir": files["placed.mlir"].read_text()}
    for program in programs:
        data[program_key(program.pool.id)] = dump_program(program.model_copy(update={"source": f"{file}:{agent}"}))
    name = check_name(name or default_name(agent))
    config_map = {"apiVersion": "v1", "kind": "ConfigMap",
                  "metadata": {"name": config_map_name(name), "labels": {APP_LABEL: "plait", "plait.dev/deployment": name}},
                  "data": data}
    _check_size(config_map, target)
    spec = AgentDeploymentSpec(
        agent=AgentSource(file=file, name=agent, config_map=config_map_name(name)),
        image=image,
        plan_hash=hashlib.sha256(plan_text.encode()).hexdigest(),
        pools=[pool_spec(p, vllm) for p in plan.pools if p.endpoint is None],
        sla=SLASpec(p50_ms=_ms(plan.sla_p50_s), p95_ms=_ms(plan.sla_p95_s), ttft_ms=_ms(plan.sla_ttft_s),
                    tpot_ms=_ms(plan.sla_tpot_s)),
        rate_qps=plan.qps, weights=weights)
    return Bundle(name, spec, config_map)


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1e3, 6)


def _check_fresh(target: str, plan: Plan, where: str) -> None:
    """The plan must be of this agent as it is now (what the workers will trace), as `plait run --plan` checks."""
    from plait.scheduler.local import check_plan
    from plait.sdk import SLA, trace
    from plait.sdk.loader import load_agent
    from plait.sdk.models import at_scale

    agent = load_agent(target)
    planned = {k: v * 1e3 for k, v in (("p50_ms", plan.sla_p50_s), ("p95_ms", plan.sla_p95_s),
                                       ("ttft_ms", plan.sla_ttft_s), ("tpot_ms", plan.sla_tpot_s)) if v is not None}
    sla = (agent.sla or SLA()).model_copy(update=planned) if planned else agent.sla
    graph = trace(agent, sla=sla, qps=plan.qps)
    if plan.scale is not None:
        graph = at_scale(graph, plan.scale)
    try:
        check_plan(plan, graph, where)
    except PlaitError as err:
        raise BundleError(str(err)) from None


def _check_size(config_map: dict[str, Any], target: str) -> None:
    sizes = {key: len(value.encode()) for key, value in config_map["data"].items()}
    total = sum(sizes.values()) + _OVERHEAD
    if total <= CONFIG_MAP_LIMIT:
        return
    largest = ", ".join(f"{k} {v / 2**20:.2f} MiB" for k, v in sorted(sizes.items(), key=lambda kv: -kv[1])[:3])
    raise BundleError(
        f"the ConfigMap of {target} would be {total / 2**20:.2f} MiB, over Kubernetes' 1 MiB limit on one object "
        f"(largest: {largest})\n  To fix: keep data out of the agent file (load it from an index, `plait index "
        "build`, or a file the image carries), or build an image with the agent in it and give --image.")


def pool_spec(pool: Pool, vllm: bool = False) -> PoolSpec:
    """A plan pool as a StatefulSet runs it: its node selector and resource requests from DEVICE_NODES."""
    nodes = device_nodes(pool.device, pool.id)
    on_cpu = pool.host_cpu or nodes.resource is None
    requests: dict[str, str] = {}
    limits: dict[str, str] = {}
    if on_cpu:   # tool workers, or a pool on a CPU server: whole cores and memory beside them
        cores = max(1, pool.cpu_cores)
        requests = {"cpu": str(cores), "memory": f"{MEMORY_PER_CORE_GI * cores}Gi"}
    else:
        if pool.slice == "mig":
            if not pool.mig_profile or nodes.resource != "nvidia.com/gpu":
                raise BundleError(f"pool {pool.id!r} is a MIG slice of {pool.device} without an NVIDIA MIG profile\n"
                                  "  To fix: re-plan (`plait plan --out DIR`); MIG needs an NVIDIA device and a "
                                  "profile such as 3g.40gb.")
            resource, count = f"nvidia.com/mig-{pool.mig_profile}", 1
        else:   # whole devices; an MPS share is one device the plugin hands to several pods
            resource, count = nodes.resource or "", 1 if pool.slice == "mps" else pool.devices_per_replica
        # extended resources are not overcommitted: Kubernetes wants the limit equal to the request
        requests[resource] = limits[resource] = str(count)
        if pool.cpu_cores:
            requests["cpu"] = str(pool.cpu_cores)
    return PoolSpec(id=pool.id, kind=pool.kind, model=pool.model, role=pool.role, peer=pool.peer, device=pool.device,
                    replicas=pool.replicas, tensor_parallel=pool.tensor_parallel,
                    devices_per_replica=pool.devices_per_replica, slice=pool.slice, mig_profile=pool.mig_profile,
                    cpu_cores=pool.cpu_cores, engine="vllm" if pool.runtime == "remote" or vllm and pool.kind == "llm"
                    and pool.role in (None, "unified") else "plait",
                    node_selector=dict(nodes.labels), resources=Resources(requests=requests, limits=limits))
