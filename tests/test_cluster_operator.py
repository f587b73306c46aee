"""The operator against a real API server, controller manager and scheduler (tests/_kube.py), run as
`plait operator` in a subprocess under its own service account's token (cluster.rbac's Role), not as admin.

There is no kubelet: the test creates Node objects, and `kubelet` below does a kubelet's part for the pods the
scheduler bound: it marks them Running and Ready and finishes their deletion. Everything else (StatefulSet and
Deployment controllers, garbage collection, RBAC, server-side apply) is the real thing.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from _kube import kube_controllers  # noqa: F401  (the module's control plane)

from plait.cluster.crd import crd
from plait.cluster.rbac import OPERATOR_NAME, operator_rules
from plait.cluster.reconcile import ANNOTATION_SPEC_HASH, LABEL_DEPLOYMENT, Owner, desired, pool_name
from plait.cluster.spec import GROUP, PLURAL, VERSION, AgentDeploymentSpec, AgentSource, PoolSpec, Resources

NS = "plait-test"
GPU_PRODUCT = "NVIDIA-H100-80GB-HBM3"
RESYNC_S = 2


def rag_spec(plan_hash: str = "plan-1") -> AgentDeploymentSpec:
    gpu = {"nvidia.com/gpu.product": GPU_PRODUCT}
    return AgentDeploymentSpec(
        agent=AgentSource(file="rag.py", name="answer"), plan_hash=plan_hash, rate_qps=2.0,
        pools=[
            PoolSpec(id="llm-llama-3.1-8b-0", kind="llm", model="llama-3.1-8b", role="unified", device="H100-80GB",
                     replicas=2, node_selector=gpu, resources=Resources(requests={"nvidia.com/gpu": "1"},
                                                                        limits={"nvidia.com/gpu": "1"})),
            PoolSpec(id="llm-qwen2.5-7b-1", kind="llm", model="qwen2.5-7b", role="unified", device="H100-80GB",
                     replicas=1, tensor_parallel=2, engine="vllm", node_selector=gpu,
                     resources=Resources(requests={"nvidia.com/gpu": "2"}, limits={"nvidia.com/gpu": "2"})),
            PoolSpec(id="tool-search-2", kind="tool", device="cpu", replicas=1, cpu_cores=2,
                     resources=Resources(requests={"cpu": "2"})),
        ])


@dataclass
class Env:
    admin: Any          # ApiClient as system:masters
    operator: Any       # ApiClient under the operator's service-account token
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def _api(env: Env, name: str, as_operator: bool = False) -> Any:
    from kubernetes import client

    return getattr(client, name)(env.operator if as_operator else env.admin)


def custom(env: Env) -> Any:
    return _api(env, "CustomObjectsApi")


def apply_cr(env: Env, name: str, spec: AgentDeploymentSpec) -> dict[str, Any]:
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "AgentDeployment",
            "metadata": {"name": name, "namespace": NS},
            "spec": spec.model_dump(mode="json", by_alias=True, exclude_none=True)}
    response = custom(env).patch_namespaced_custom_object(
        GROUP, VERSION, NS, PLURAL, name, body, field_manager="plait-test", force=True,
        _content_type="application/apply-patch+yaml", _preload_content=False)
    return dict(json.loads(response.data))


def get_cr(env: Env, name: str) -> dict[str, Any]:
    return dict(custom(env).get_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, name))


def statefulsets(env: Env, name: str) -> dict[str, Any]:
    items = _api(env, "AppsV1Api").list_namespaced_stateful_set(NS, label_selector=f"{LABEL_DEPLOYMENT}={name}")
    return {s.metadata.name: s for s in items.items}


def kubelet(env: Env) -> None:
    """A kubelet's part for every pod bound to a node: Running and Ready; a deleted one is finished off."""
    core = _api(env, "CoreV1Api")
    for pod in core.list_namespaced_pod(NS).items:
        if pod.metadata.deletion_timestamp is not None:
            core.delete_namespaced_pod(pod.metadata.name, NS, grace_period_seconds=0)
        elif pod.spec.node_name and not any(c.type == "Ready" and c.status == "True"
                                            for c in pod.status.conditions or []):
            conditions = [{"type": t, "status": "True"} for t in
                          ("PodScheduled", "Initialized", "ContainersReady", "Ready")]
            core.patch_namespaced_pod_status(pod.metadata.name, NS, {"status": {
                "phase": "Running", "conditions": conditions, "podIP": "10.1.0.7"}},
                _content_type="application/merge-patch+json")


def wait_for(env: Env, what: str, check: Callable[[], Any], timeout_s: float = 30.0, run_pods: bool = True) -> Any:
    """Poll `check` until it returns something truthy, running pods meanwhile unless told not to."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if run_pods:
            kubelet(env)
        if result := check():
            return result
        time.sleep(0.2)
    crs = custom(env).list_namespaced_custom_object(GROUP, VERSION, NS, PLURAL)["items"]
    raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}\n--- status ---\n"
                         + "\n".join(json.dumps(cr.get("status")) for cr in crs)
                         + "\n--- operator log (tail) ---\n" + env.log_text()[-4000:])


def condition(cr: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in (cr.get("status") or {}).get("conditions", []) if c["type"] == type_), {})


def ready(env: Env, name: str) -> bool:
    cr = get_cr(env, name)
    return (condition(cr, "Ready").get("status") == "True"
            and cr["status"].get("observedGeneration") == cr["metadata"]["generation"])


def _node(name: str, labels: dict[str, str], allocatable: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": {
        "kubernetes.io/hostname": name, **labels}},
            "status": {"capacity": allocatable, "allocatable": allocatable,
                       "conditions": [{"type": "Ready", "status": "True"}]}}


def _operator_token(admin: Any) -> str:
    """A service account bound to the operator's Role, and a token for it from the TokenRequest API."""
    from kubernetes import client

    core, rbac = client.CoreV1Api(admin), client.RbacAuthorizationV1Api(admin)
    core.create_namespaced_service_account(NS, {"metadata": {"name": OPERATOR_NAME}})
    rbac.create_namespaced_role(NS, {"metadata": {"name": OPERATOR_NAME}, "rules": operator_rules()})
    rbac.create_namespaced_role_binding(NS, {
        "metadata": {"name": OPERATOR_NAME},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": OPERATOR_NAME},
        "subjects": [{"kind": "ServiceAccount", "name": OPERATOR_NAME, "namespace": NS}]})
    token = core.create_namespaced_service_account_token(OPERATOR_NAME, NS, {"spec": {"expirationSeconds": 3600}})
    return str(token.status.token)


def _install(admin: Any) -> None:
    from kubernetes import client

    ext = client.ApiextensionsV1Api(admin)
    ext.create_custom_resource_definition(crd())
    core = client.CoreV1Api(admin)
    core.create_namespace({"metadata": {"name": NS}})
    for node in (_node("gpu-0", {"nvidia.com/gpu.product": GPU_PRODUCT},
                       {"cpu": "64", "memory": "512Gi", "pods": "110", "nvidia.com/gpu": "8"}),
                 _node("cpu-0", {}, {"cpu": "32", "memory": "128Gi", "pods": "110"})):
        core.create_node(node)
        # The server taints a new node not-ready until its node controller (not run here) sees it Ready.
        core.patch_node(node["metadata"]["name"], {"spec": {"taints": None}})
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        got = ext.read_custom_resource_definition(f"{PLURAL}.{GROUP}")
        if any(c.type == "Established" and c.status == "True" for c in got.status.conditions or []):
            return
        time.sleep(0.1)
    raise AssertionError("the CRD was not Established in 20 s")


@pytest.fixture(scope="module")
def env(kube_controllers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:  # noqa: F811
    admin = kube_controllers.client()
    _install(admin)
    token = _operator_token(admin)
    folder = tmp_path_factory.mktemp("operator")
    kubeconfig = kube_controllers.write_kubeconfig(folder / "kubeconfig", token)
    log = folder / "operator.log"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "plait.cli", "operator", "--kubeconfig", str(kubeconfig),
                                 "-n", NS, "--resync-s", str(RESYNC_S)], stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        yield Env(admin=admin, operator=kube_controllers.client(token=token), log=log)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def rag(env: Env) -> dict[str, Any]:
    """The AgentDeployment 'rag', created and brought to Ready (the tests below change it in turn)."""
    cr = apply_cr(env, "rag", rag_spec())
    wait_for(env, "rag Ready", lambda: ready(env, "rag"), timeout_s=60)
    return cr


def test_create_makes_a_statefulset_per_pool_services_and_router_then_ready(env: Env, rag: dict[str, Any]) -> None:
    spec, uid = rag_spec(), rag["metadata"]["uid"]
    want = desired(Owner("rag", NS, uid), spec)
    apps, core = _api(env, "AppsV1Api"), _api(env, "CoreV1Api")
    have = statefulsets(env, "rag")
    assert sorted(have) == sorted(p.name for p in want.pools)
    llm = have[pool_name("rag", "llm-llama-3.1-8b-0")]
    assert llm.spec.replicas == 2 and llm.status.ready_replicas == 2
    assert llm.spec.template.spec.node_selector == {"nvidia.com/gpu.product": GPU_PRODUCT}
    assert llm.spec.template.spec.containers[0].resources.requests == {"nvidia.com/gpu": "1"}
    assert [(r.kind, r.name, r.uid, r.controller) for r in llm.metadata.owner_references] == [
        ("AgentDeployment", "rag", uid, True)]
    # The real scheduler placed the GPU pools by their node selector and GPU requests.
    pods = core.list_namespaced_pod(NS, label_selector=f"{LABEL_DEPLOYMENT}=rag").items
    assert {p.spec.node_name for p in pods if p.metadata.name.startswith("rag-llm")} == {"gpu-0"}
    for p in want.pools:
        assert core.read_namespaced_service(p.name, NS).spec.cluster_ip == "None"
    assert apps.read_namespaced_deployment("rag-router", NS).status.ready_replicas == 1
    assert core.read_namespaced_service("rag-router", NS).spec.ports[0].port == 8000
    policies = _api(env, "NetworkingV1Api").list_namespaced_network_policy(NS, label_selector=f"{LABEL_DEPLOYMENT}=rag")
    assert sorted(p.metadata.name for p in policies.items) == ["rag-pools", "rag-router"]   # under its own Role
    config = core.read_namespaced_config_map("rag-router", NS).data["plait.yaml"]
    assert f"qwen2.5-7b: http://rag-llm-qwen2-5-7b-1.{NS}.svc:8000/v1" in config
    status = get_cr(env, "rag")["status"]
    assert [(p["id"], p["readyReplicas"]) for p in status["pools"]] == [
        ("llm-llama-3.1-8b-0", 2), ("llm-qwen2.5-7b-1", 1), ("tool-search-2", 1)]
    assert status["endpoint"] == f"http://rag-router.{NS}.svc:8000"
    assert {c["type"]: c["status"] for c in status["conditions"]} == {
        "Planned": "True", "Deploying": "False", "Ready": "True", "Degraded": "False"}
    assert not any(key.startswith("kopf") for key in status)   # kopf's progress lives in annotations
    annotations = get_cr(env, "rag")["metadata"]["annotations"]
    assert f"{GROUP}/last-handled-configuration" in annotations


def test_a_changed_spec_rolls_the_pools_one_at_a_time(env: Env, rag: dict[str, Any]) -> None:
    new = desired(Owner("rag", NS, rag["metadata"]["uid"]), rag_spec(plan_hash="plan-2"))
    new_hash = {p.name: p.statefulset["metadata"]["annotations"][ANNOTATION_SPEC_HASH] for p in new.pools}
    order = [p.name for p in new.pools]
    apply_cr(env, "rag", rag_spec(plan_hash="plan-2"))

    def at_new(s: Any) -> bool:
        return bool(s.metadata.annotations.get(ANNOTATION_SPEC_HASH) == new_hash[s.metadata.name])

    def done(s: Any) -> bool:
        st = s.status
        return bool(at_new(s) and (st.observed_generation or 0) >= s.metadata.generation
                    and st.ready_replicas == st.updated_replicas == s.spec.replicas)

    # Without pods running, the first pool takes the new spec and the others wait for it.
    wait_for(env, "the first pool to take the new spec", lambda: at_new(statefulsets(env, "rag")[order[0]]),
             run_pods=False)
    deploying = wait_for(env, "status Rolling", lambda: condition(get_cr(env, "rag"), "Deploying").get(
        "reason") == "Rolling" and condition(get_cr(env, "rag"), "Deploying"), run_pods=False)
    assert deploying["message"] == "pool llm-llama-3.1-8b-0 updating; waiting: llm-qwen2.5-7b-1, tool-search-2"
    assert not any(at_new(statefulsets(env, "rag")[name]) for name in order[1:])
    # Every snapshot of the roll: a pool at the new spec only after the pool before it finished.
    snapshots = 0

    def rolled() -> bool:
        nonlocal snapshots
        have = statefulsets(env, "rag")
        snapshots += 1
        for before, after in zip(order, order[1:], strict=False):
            assert not at_new(have[after]) or done(have[before]), f"{after} took the new spec before {before} was ready"
        return all(done(have[name]) for name in order) and ready(env, "rag")

    wait_for(env, "every pool rolled and Ready", rolled, timeout_s=90)
    assert snapshots > 3
    assert "rolling: pool llm-llama-3.1-8b-0 first; waiting: llm-qwen2.5-7b-1, tool-search-2" in env.log_text()


def test_a_statefulset_deleted_by_hand_is_put_back(env: Env, rag: dict[str, Any]) -> None:
    name = pool_name("rag", "tool-search-2")
    old_uid = statefulsets(env, "rag")[name].metadata.uid
    _api(env, "AppsV1Api").delete_namespaced_stateful_set(name, NS)
    back = wait_for(env, "the StatefulSet back", lambda: (s := statefulsets(env, "rag").get(name)) is not None
                    and s.metadata.uid != old_uid and s)
    assert back.spec.replicas == 1 and back.metadata.owner_references[0].uid == rag["metadata"]["uid"]
    wait_for(env, "rag Ready again", lambda: ready(env, "rag"))


def test_a_hand_edit_conflicts_409_is_retried_and_taken_back(env: Env, rag: dict[str, Any]) -> None:
    name = pool_name("rag", "llm-llama-3.1-8b-0")
    _api(env, "AppsV1Api").patch_namespaced_stateful_set(name, NS, {"spec": {"replicas": 3}},
                                                         field_manager="kubectl-edit")
    wait_for(env, "replicas back at 2", lambda: statefulsets(env, "rag")[name].spec.replicas == 2, timeout_s=30)
    log = env.log_text()
    conflict = ('409 Conflict: Apply failed with 1 conflict: conflict with "kubectl-edit" using apps/v1: '
                ".spec.replicas; the retry takes the fields back")
    assert f"Handler 'child-statefulsets' failed temporarily: {conflict}" in log   # the watch saw it first
    retried = log.index(f"Timer 'resync' failed temporarily: {conflict}")        # kopf retries the timer
    assert re.search(rf"StatefulSet {name}: applied \(generation \d+\)", log[retried:])   # forced, after the delay
    owners = {(f.manager, f.operation) for f in statefulsets(env, "rag")[name].metadata.managed_fields
              if "f:replicas" in (f.fields_v1 or {}).get("f:spec", {})}
    assert owners == {(OPERATOR_NAME, "Apply")}
    # kopf posted the CR handler's (the timer's) failure as an Event on the resource, under the operator's Role.
    def posted() -> bool:
        events = _api(env, "CoreV1Api").list_namespaced_event(NS).items
        return any("409 Conflict" in (e.message or "") and e.involved_object.kind == "AgentDeployment"
                   for e in events)

    wait_for(env, "the 409 posted as an Event on rag", posted, timeout_s=10)
    wait_for(env, "rag Ready again", lambda: ready(env, "rag"))


def test_a_pool_dropped_from_the_spec_is_deleted(env: Env, rag: dict[str, Any]) -> None:
    spec = rag_spec(plan_hash="plan-2")
    apply_cr(env, "rag", spec.model_copy(update={"pools": spec.pools[:2]}))
    name = pool_name("rag", "tool-search-2")
    wait_for(env, "the dropped pool gone", lambda: name not in statefulsets(env, "rag"))
    services = _api(env, "CoreV1Api").list_namespaced_service(NS, label_selector=f"{LABEL_DEPLOYMENT}=rag").items
    assert sorted(s.metadata.name for s in services) == sorted([pool_name("rag", p.id) for p in spec.pools[:2]]
                                                               + ["rag-router", "rag-router-control"])
    router = _api(env, "AppsV1Api").read_namespaced_deployment("rag-router", NS).spec.template.spec.containers[0]
    pool_services = json.loads(next(e.value for e in router.env if e.name == "PLAIT_POOL_SERVICES"))
    assert pool_services == {"llm-llama-3.1-8b-0": f"rag-llm-llama-3-1-8b-0.{NS}.svc"}
    status = wait_for(env, "rag Ready with two pools", lambda: ready(env, "rag") and get_cr(env, "rag")["status"])
    assert [p["id"] for p in status["pools"]] == ["llm-llama-3.1-8b-0", "llm-qwen2.5-7b-1"]


def test_a_vllm_pool_in_a_split_role_is_refused_in_status(env: Env) -> None:
    spec = rag_spec()
    prefill = spec.pools[1].model_copy(update={"role": "prefill"})
    apply_cr(env, "split", spec.model_copy(update={"pools": [spec.pools[0], prefill]}))
    planned = wait_for(env, "Planned False", lambda: condition(get_cr(env, "split"), "Planned").get(
        "status") == "False" and condition(get_cr(env, "split"), "Planned"), run_pods=False)
    assert planned["reason"] == "UnsupportedEngine"
    assert planned["message"].startswith("pool 'llm-qwen2.5-7b-1': engine vllm serves the unified role only, "
                                         "got role 'prefill'\n  To fix:")
    assert statefulsets(env, "split") == {}
    custom(env).delete_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "split")


def test_the_operator_token_is_refused_what_its_role_does_not_grant(env: Env) -> None:
    from kubernetes.client import ApiException

    core = _api(env, "CoreV1Api", as_operator=True)
    refused = [lambda: core.list_namespaced_secret(NS), lambda: core.delete_namespace(NS),
               lambda: core.create_namespaced_pod(NS, {"metadata": {"name": "x"}, "spec": {"containers": [
                   {"name": "x", "image": "x"}]}}),
               lambda: core.list_namespaced_config_map("default")]
    for call in refused:
        with pytest.raises(ApiException) as err:
            call()
        assert err.value.status == 403
    listed = _api(env, "AppsV1Api", as_operator=True).list_namespaced_stateful_set(NS).items   # what it may do
    assert {s.metadata.name for s in listed} == set(statefulsets(env, "rag")) != set()


def test_deleting_the_resource_garbage_collects_every_child(env: Env, rag: dict[str, Any]) -> None:
    custom(env).delete_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "rag")
    selector = f"{LABEL_DEPLOYMENT}=rag"
    apps, core = _api(env, "AppsV1Api"), _api(env, "CoreV1Api")
    listings = [lambda: apps.list_namespaced_stateful_set(NS, label_selector=selector),
                lambda: apps.list_namespaced_deployment(NS, label_selector=selector),
                lambda: core.list_namespaced_service(NS, label_selector=selector),
                lambda: core.list_namespaced_config_map(NS, label_selector=selector)]
    wait_for(env, "every child gone", lambda: all(not listing().items for listing in listings), timeout_s=45)
    assert not custom(env).list_namespaced_custom_object(GROUP, VERSION, NS, PLURAL)["items"]
