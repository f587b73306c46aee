"""What an AgentDeployment runs, as plain Kubernetes objects: a StatefulSet and a Service per pool, and the
router's ConfigMap, Deployment and Service, built purely from the resource's name, namespace, uid and spec.

Nothing here talks to an API server (cluster.operator applies these). Every child carries a controller owner
reference to the resource, so deleting it lets the garbage collector remove them all, and names that depend only
on the resource and pool ids, so a second reconcile finds what the first made.

The container contract (what the plait image's entrypoint reads; docs/cluster.md, "The operator"):
PLAIT_ROLE (worker or router), PLAIT_AGENT (FILE:AGENT under PLAIT_AGENT_DIR, where the agent ConfigMap is
mounted), PLAIT_POOL_ID, PLAIT_POD_NAME (its ordinal is the replica), PLAIT_RENDEZVOUS (the pool's headless
Service), PLAIT_ROUTER, PLAIT_ROUTER_HOST and PLAIT_CONTROL_PORTS (where a worker attaches: the router's control
Service), PLAIT_POOL_SERVICES (the router's map of pool id to Service); a worker answers GET /healthz on port 8081
once it is attached to the router, the router on port 8000 once every worker has.

The router is the workers' driver (`plait serve --attach`): the worker pods connect to it, through a headless
Service that publishes it before it is ready (it is ready only once they have attached), and their Gloo pairs
meet at its TCPStore, each side listening at its pod's stable name through its pool's headless Service.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

import yaml

from plait.cluster.rbac import OPERATOR_NAME
from plait.cluster.spec import GROUP, KIND, VERSION, AgentDeploymentSpec, PoolSpec
from plait.scheduler import workers

LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_DEPLOYMENT = f"{GROUP}/deployment"
LABEL_POOL = f"{GROUP}/pool"
LABEL_COMPONENT = f"{GROUP}/component"
ANNOTATION_SPEC_HASH = f"{GROUP}/spec-hash"        # on a StatefulSet: the hash of the spec the operator gave it
ANNOTATION_POOL_ID = f"{GROUP}/pool-id"            # the pool's id as plan.json spells it (labels cannot hold all)
ANNOTATION_PLAN_HASH = f"{GROUP}/plan-hash"        # on pod templates: a changed plan restarts every pool

AGENT_DIR = "/etc/plait/agent"   # the agent ConfigMap's files; the router's plait.yaml beside them
WEIGHTS_DIR = "/models"
CONTROL_PORTS = dict(zip(("calls", "answers", "store"), workers.CONTROL_PORTS, strict=True))   # the router's,
                                                                                            # for its workers
HEALTH_PORT = 8081
ROUTER_PORT = 8000
VLLM_PORT = 8000
VLLM_IMAGE = "vllm/vllm-openai:v0.6.6"
API_KEY_KEY = "api-key"          # the key in the Secret <name>-api-key the router reads its bearer token from

_STATEFULSET_NAME_MAX = 52       # a pod's controller-revision-hash label is <statefulset>-<10 characters>, <= 63
_NAME_MAX = 63                   # a Service name is a DNS-1035 label


class SpecRefused(ValueError):
    """The spec asks for something the operator cannot run; `reason` is the Planned condition's reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Owner:
    """The AgentDeployment the children belong to."""

    name: str
    namespace: str
    uid: str


@dataclass(frozen=True)
class Weights:
    """Where LLM pools read their weights (/models/<model>) and search pools their indexes (/models/indexes/<name>):
    a PersistentVolumeClaim mounted read-only, or an init container whose image holds them under /models (copied
    into an emptyDir). Set by the resource's spec.weights (`plait submit --weights`)."""

    pvc: str | None = None
    image: str | None = None

    @staticmethod
    def parse(value: str | None) -> Weights | None:
        if not value:
            return None
        kind, _, ref = value.partition(":")
        if kind == "pvc" and ref:
            return Weights(pvc=ref)
        if kind == "image" and ref:
            return Weights(image=ref)
        raise SpecRefused("InvalidWeights", f"weights must be 'pvc:CLAIM' or 'image:REF', got {value!r}\n"
                          "  To fix: e.g. --weights pvc:llama-weights")


@dataclass(frozen=True)
class PoolChildren:
    """One pool's StatefulSet and the Service that governs it (rendezvous, or the router's way to a vLLM pool)."""

    pool: PoolSpec
    statefulset: dict[str, Any]
    service: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.statefulset["metadata"]["name"])


@dataclass(frozen=True)
class Desired:
    """Every child of one AgentDeployment; `pools` in the spec's order, the order a changed spec rolls in."""

    pools: list[PoolChildren]
    router_config: dict[str, Any]
    router: dict[str, Any]
    router_service: dict[str, Any]
    control_service: dict[str, Any]   # headless: the workers reach the router through it before it is ready
    network_policies: list[dict[str, Any]]
    endpoint: str

    @property
    def services(self) -> list[dict[str, Any]]:
        """The router's Services (each pool's is in `pools`)."""
        return [self.router_service, self.control_service]


def child_name(owner_name: str, part: str, limit: int = _NAME_MAX) -> str:
    """`<owner>-<part>` as a DNS-1035 label of at most `limit` characters; a longer one is cut and ends in a hash
    of the whole, so two long names stay apart and the same input always gives the same name."""
    name = re.sub(r"[^a-z0-9-]+", "-", f"{owner_name}-{part}".lower()).strip("-")
    if not name[:1].isalpha():
        name = f"p-{name}"
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[:limit - 9].rstrip('-')}-{digest}"


def pool_name(owner_name: str, pool_id: str) -> str:
    """The StatefulSet's (and its Service's) name for `pool_id`."""
    return child_name(owner_name, pool_id, _STATEFULSET_NAME_MAX)


def router_name(owner_name: str) -> str:
    return child_name(owner_name, "router")


def control_name(owner_name: str) -> str:
    return child_name(owner_name, "router-control")


def spec_hash(obj: dict[str, Any]) -> str:
    """A short hash of an object's spec: the operator compares it to tell a changed pool from an unchanged one."""
    return hashlib.sha256(json.dumps(obj["spec"], sort_keys=True).encode()).hexdigest()[:16]


def check_spec(owner: Owner, spec: AgentDeploymentSpec) -> None:
    """Refuse what the operator cannot run, naming the pool and the fix (raises SpecRefused)."""
    if len(owner.name) > _NAME_MAX:
        raise SpecRefused("InvalidName", f"the AgentDeployment's name is {len(owner.name)} characters; its children's "
                          f"labels hold at most {_NAME_MAX}\n  To fix: use a shorter name")
    names: dict[str, str] = {router_name(owner.name): "the router"}
    vllm_models: dict[str, str] = {}
    for pool in spec.pools:
        name = pool_name(owner.name, pool.id)
        if name in names:
            raise SpecRefused("InvalidPools", f"pool {pool.id!r} and {names[name]} would both be named {name!r}\n"
                              "  To fix: give the pools ids that differ in more than case and punctuation")
        names[name] = f"pool {pool.id!r}"
        if pool.engine != "vllm":
            continue
        if pool.kind != "llm" or pool.model is None:
            raise SpecRefused("UnsupportedEngine", f"pool {pool.id!r}: engine vllm serves LLM pools with a model, "
                              f"got kind {pool.kind!r}\n  To fix: set engine: plait on this pool")
        if pool.role not in (None, "unified"):
            raise SpecRefused("UnsupportedEngine", f"pool {pool.id!r}: engine vllm serves the unified role only, got "
                              f"role {pool.role!r}\n  To fix: set engine: plait for split prefill/decode pools, or "
                              "plan this model unified")
        if pool.model in vllm_models:
            raise SpecRefused("UnsupportedEngine", f"pools {vllm_models[pool.model]!r} and {pool.id!r} both serve "
                              f"{pool.model!r} with vllm; the router keeps one endpoint per model\n"
                              "  To fix: merge them into one pool with more replicas")
        vllm_models[pool.model] = pool.id


def desired(owner: Owner, spec: AgentDeploymentSpec, weights: Weights | None = None) -> Desired:
    """Every child `owner` should have for `spec` (raises SpecRefused for a spec it cannot run)."""
    check_spec(owner, spec)
    pools = [PoolChildren(pool, _pool_statefulset(owner, spec, pool, weights), _pool_service(owner, pool))
             for pool in spec.pools]
    endpoints = {p.pool.model: f"http://{p.name}.{owner.namespace}.svc:{VLLM_PORT}/v1"
                 for p in pools if p.pool.engine == "vllm"}
    router = router_name(owner.name)
    config = _object("v1", "ConfigMap", owner, router, _labels(owner, "router"))
    config["data"] = {"plait.yaml": yaml.safe_dump({"endpoints": endpoints}, sort_keys=True)}
    services = {p.pool.id: f"{p.name}.{owner.namespace}.svc" for p in pools if p.pool.engine == "plait"}
    labels = _labels(owner, "router")
    return Desired(pools=pools, router_config=config, router=_router_deployment(owner, spec, services),
                   router_service=_service(owner, router, labels, {"http": ROUTER_PORT}, headless=False),
                   control_service=_service(owner, control_name(owner.name), labels, CONTROL_PORTS, headless=True,
                                            publish_not_ready=True),
                   network_policies=_network_policies(owner),
                   endpoint=f"http://{router}.{owner.namespace}.svc:{ROUTER_PORT}")


def _labels(owner: Owner, component: str, pool: str | None = None) -> dict[str, str]:
    labels = {LABEL_MANAGED_BY: OPERATOR_NAME, LABEL_DEPLOYMENT: owner.name, LABEL_COMPONENT: component}
    if pool is not None:
        labels[LABEL_POOL] = pool[:_NAME_MAX].strip("-.")
    return labels


def owner_reference(owner: Owner) -> dict[str, Any]:
    """The controller reference kopf.adopt would write (built here so the builders stay free of kopf)."""
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": KIND, "name": owner.name, "uid": owner.uid,
            "controller": True, "blockOwnerDeletion": True}


def _object(api_version: str, kind: str, owner: Owner, name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": kind,
            "metadata": {"name": name, "namespace": owner.namespace, "labels": dict(labels),
                         "ownerReferences": [owner_reference(owner)]}}


def _service(owner: Owner, name: str, labels: dict[str, str], ports: dict[str, int], headless: bool,
             publish_not_ready: bool = False) -> dict[str, Any]:
    service = _object("v1", "Service", owner, name, labels)
    # "protocol" spelled out: server-side apply keys ports by (port, protocol), and 1.20 has no default for it
    service["spec"] = {"selector": dict(labels), "ports": [{"name": port_name, "port": port, "targetPort": port,
                                                            "protocol": "TCP"} for port_name, port in ports.items()]}
    if headless:
        service["spec"]["clusterIP"] = "None"
        service["spec"]["publishNotReadyAddresses"] = publish_not_ready
    return service


def _network_policies(owner: Owner) -> list[dict[str, Any]]:
    """The pools and the router's control ports take traffic from this deployment's own pods only: the control
    ports and Gloo pairs are not authenticated (as torch.distributed's are not). The router's API port is open
    (it requires its API key). Kubernetes always lets a node's kubelet probe its pods."""
    own = [{"podSelector": {"matchLabels": {LABEL_DEPLOYMENT: owner.name, LABEL_MANAGED_BY: OPERATOR_NAME}}}]
    pools = _object("networking.k8s.io/v1", "NetworkPolicy", owner, child_name(owner.name, "pools"),
                    _labels(owner, "pool"))
    pools["spec"] = {"podSelector": {"matchLabels": {LABEL_DEPLOYMENT: owner.name, LABEL_COMPONENT: "pool"}},
                     "policyTypes": ["Ingress"], "ingress": [{"from": own}]}
    router = _object("networking.k8s.io/v1", "NetworkPolicy", owner, router_name(owner.name), _labels(owner, "router"))
    router["spec"] = {"podSelector": {"matchLabels": _labels(owner, "router")}, "policyTypes": ["Ingress"],
                      "ingress": [{"from": own}, {"ports": [{"port": ROUTER_PORT, "protocol": "TCP"}]}]}
    return [pools, router]


def _pool_service(owner: Owner, pool: PoolSpec) -> dict[str, Any]:
    # Headless either way (a StatefulSet's serviceName and a Service's clusterIP cannot change later). Plait's
    # workers' Gloo pairs listen at their names here (on ports Gloo picks) from the start; a vLLM pool's DNS
    # answers only replicas that pass /health.
    labels = _labels(owner, "pool", pool_name(owner.name, pool.id))
    vllm = pool.engine == "vllm"
    return _service(owner, pool_name(owner.name, pool.id), labels, {"http": VLLM_PORT} if vllm else
                    {"health": HEALTH_PORT}, headless=True, publish_not_ready=not vllm)


def _agent_volume(spec: AgentDeploymentSpec, owner: Owner, router_config: str | None = None) -> dict[str, Any]:
    agent_config = spec.agent.config_map or child_name(owner.name, "agent")
    if router_config is None:
        return {"name": "agent", "configMap": {"name": agent_config}}
    # The router's plait.yaml must sit beside the agent file (plait reads it from there): one projected folder.
    return {"name": "agent", "projected": {"sources": [{"configMap": {"name": agent_config}},
                                                       {"configMap": {"name": router_config}}]}}


def _weights(weights: Weights | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """The volumes, the main container's mounts and the init containers that put weights under /models."""
    if weights is None:
        return [], [], []
    mount = {"name": "weights", "mountPath": WEIGHTS_DIR, "readOnly": True}
    if weights.pvc is not None:
        return [{"name": "weights", "persistentVolumeClaim": {"claimName": weights.pvc, "readOnly": True}}], [mount], []
    init = {"name": "weights", "image": weights.image, "command": ["sh", "-c", f"cp -a {WEIGHTS_DIR}/. /weights/"],
            "volumeMounts": [{"name": "weights", "mountPath": "/weights"}]}
    return [{"name": "weights", "emptyDir": {}}], [mount], [init]


def _env(values: dict[str, str]) -> list[dict[str, Any]]:
    fields = {"PLAIT_POD_NAME": "metadata.name", "PLAIT_NAMESPACE": "metadata.namespace"}
    env: list[dict[str, Any]] = [{"name": key, "valueFrom": {"fieldRef": {"fieldPath": path}}}
                                 for key, path in fields.items()]
    return env + [{"name": key, "value": value} for key, value in values.items()]


def _control_ports() -> str:
    return ",".join(str(port) for port in CONTROL_PORTS.values())


def _resources(pool: PoolSpec) -> dict[str, Any]:
    return {key: dict(value) for key, value in (("requests", pool.resources.requests),
                                                ("limits", pool.resources.limits)) if value}


def _probe(port: int | str, path: str) -> dict[str, Any]:
    return {"httpGet": {"path": path, "port": port}, "periodSeconds": 5, "failureThreshold": 3}


def _worker_container(owner: Owner, spec: AgentDeploymentSpec, pool: PoolSpec, mounts: list[dict[str, Any]],
                      weights: Weights | None) -> dict[str, Any]:
    values = {"PLAIT_ROLE": "worker", "PLAIT_DEPLOYMENT": owner.name, "PLAIT_POOL_ID": pool.id,
              "PLAIT_POOL_KIND": pool.kind, "PLAIT_REPLICAS": str(pool.replicas),
              "PLAIT_AGENT_DIR": AGENT_DIR, "PLAIT_AGENT": f"{AGENT_DIR}/{spec.agent.file}:{spec.agent.name}",
              "PLAIT_RENDEZVOUS": f"{pool_name(owner.name, pool.id)}.{owner.namespace}.svc",
              "PLAIT_ROUTER": f"{router_name(owner.name)}.{owner.namespace}.svc:{ROUTER_PORT}",
              "PLAIT_ROUTER_HOST": f"{control_name(owner.name)}.{owner.namespace}.svc",
              "PLAIT_CONTROL_PORTS": _control_ports(), "PLAIT_HEALTH_PORT": str(HEALTH_PORT)}
    if weights is not None and pool.kind == "llm":
        values["PLAIT_WEIGHTS_DIR"] = WEIGHTS_DIR
    if weights is not None and pool.kind == "search":   # the same volume holds the indexes
        values["PLAIT_INDEXES_DIR"] = f"{WEIGHTS_DIR}/indexes"
    # its CPU request in whole cores (rounded up; 0 without one): torch's threads, not the node's cores it sees
    cpus = {"name": "PLAIT_CPUS", "valueFrom": {"resourceFieldRef": {"containerName": "worker",
                                                                     "resource": "requests.cpu", "divisor": "1"}}}
    container = {"name": "worker", "image": pool.image or spec.image, "env": [*_env(values), cpus],
                 "ports": [{"name": "health", "containerPort": HEALTH_PORT, "protocol": "TCP"}],
                 "readinessProbe": _probe("health", "/healthz"),
                 "volumeMounts": [{"name": "agent", "mountPath": AGENT_DIR, "readOnly": True}, *mounts]}
    if resources := _resources(pool):
        container["resources"] = resources
    return container


def _api_key(owner: Owner, variable: str) -> dict[str, Any]:
    """`variable` from the deployment's Secret: the router's bearer token, which its vLLM pools require too."""
    return {"name": variable, "valueFrom": {"secretKeyRef": {"name": child_name(owner.name, "api-key"),
                                                             "key": API_KEY_KEY}}}


def _vllm_container(owner: Owner, pool: PoolSpec, mounts: list[dict[str, Any]],
                    weights: Weights | None) -> dict[str, Any]:
    assert pool.model is not None   # check_spec refused a vllm pool without one
    model = f"{WEIGHTS_DIR}/{pool.model}" if weights is not None else pool.model
    container = {"name": "vllm", "image": pool.image or VLLM_IMAGE,
                 "args": ["--model", model, "--served-model-name", pool.model,
                          "--tensor-parallel-size", str(pool.tensor_parallel), "--host", "0.0.0.0",
                          "--port", str(VLLM_PORT)],
                 "env": [_api_key(owner, "VLLM_API_KEY")],   # vLLM requires it on /v1 (not on /health)
                 "ports": [{"name": "http", "containerPort": VLLM_PORT, "protocol": "TCP"}],
                 "readinessProbe": _probe("http", "/health"),
                 # tensor-parallel ranks share memory through /dev/shm, which a container caps at 64 MiB
                 "volumeMounts": [{"name": "shm", "mountPath": "/dev/shm"}, *mounts]}
    if resources := _resources(pool):
        container["resources"] = resources
    return container


def _pool_statefulset(owner: Owner, spec: AgentDeploymentSpec, pool: PoolSpec,
                      weights: Weights | None) -> dict[str, Any]:
    name = pool_name(owner.name, pool.id)
    labels = _labels(owner, "pool", name)
    llm_weights = weights if pool.kind in ("llm", "search") else None   # checkpoints, indexes
    volumes, mounts, init = _weights(llm_weights)
    if pool.engine == "vllm":
        container = _vllm_container(owner, pool, mounts, llm_weights)
        volumes.append({"name": "shm", "emptyDir": {"medium": "Memory"}})
    else:
        container = _worker_container(owner, spec, pool, mounts, llm_weights)
        volumes.insert(0, _agent_volume(spec, owner))
    pod: dict[str, Any] = {"containers": [container], "volumes": volumes}
    if init:
        pod["initContainers"] = init
    if pool.node_selector:
        pod["nodeSelector"] = dict(pool.node_selector)
    statefulset = _object("apps/v1", "StatefulSet", owner, name, labels)
    statefulset["metadata"]["annotations"] = {ANNOTATION_POOL_ID: pool.id}
    statefulset["spec"] = {
        "replicas": pool.replicas, "serviceName": name, "podManagementPolicy": "Parallel",
        "selector": {"matchLabels": dict(labels)},
        "updateStrategy": {"type": "RollingUpdate"},
        "template": {"metadata": {"labels": dict(labels), "annotations": {ANNOTATION_PLAN_HASH: spec.plan_hash}},
                     "spec": pod}}
    statefulset["metadata"]["annotations"][ANNOTATION_SPEC_HASH] = spec_hash(statefulset)
    return statefulset


def _router_deployment(owner: Owner, spec: AgentDeploymentSpec, services: dict[str, str]) -> dict[str, Any]:
    name = router_name(owner.name)
    labels = _labels(owner, "router")
    values = {"PLAIT_ROLE": "router", "PLAIT_DEPLOYMENT": owner.name, "PLAIT_AGENT_DIR": AGENT_DIR,
              "PLAIT_AGENT": f"{AGENT_DIR}/{spec.agent.file}:{spec.agent.name}",
              "PLAIT_POOL_SERVICES": json.dumps(services, sort_keys=True), "PLAIT_ROUTER_PORT": str(ROUTER_PORT),
              "PLAIT_CONTROL_PORTS": _control_ports()}
    env = _env(values) + [_api_key(owner, "PLAIT_API_KEY")]
    container = {"name": "router", "image": spec.image, "env": env,
                 "ports": [{"name": "http", "containerPort": ROUTER_PORT, "protocol": "TCP"},
                           *({"name": name, "containerPort": port, "protocol": "TCP"}
                             for name, port in CONTROL_PORTS.items())],
                 "readinessProbe": _probe("http", "/healthz"),
                 "volumeMounts": [{"name": "agent", "mountPath": AGENT_DIR, "readOnly": True}]}
    deployment = _object("apps/v1", "Deployment", owner, name, labels)
    deployment["spec"] = {
        "replicas": 1, "selector": {"matchLabels": dict(labels)},
        "template": {"metadata": {"labels": dict(labels), "annotations": {ANNOTATION_PLAN_HASH: spec.plan_hash}},
                     "spec": {"containers": [container], "volumes": [_agent_volume(spec, owner, name)]}}}
    return deployment
