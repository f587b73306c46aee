"""The operator's pure parts: the children an AgentDeployment should have (cluster.reconcile), which pools a
changed spec rolls now and the status its children give (cluster.rollout). The API-server tests are in
tests/test_cluster_operator.py."""

from __future__ import annotations

import copy
import re

import pytest
import yaml

from plait.cli._settings import RunSettings
from plait.cluster import rollout
from plait.cluster.reconcile import (
    ANNOTATION_SPEC_HASH,
    Owner,
    SpecRefused,
    Weights,
    child_name,
    desired,
    pool_name,
)
from plait.cluster.spec import AgentDeploymentSpec, AgentDeploymentStatus, AgentSource, PoolSpec, Resources

OWNER = Owner("demo", "team-a", "0b7c-uid")
DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def make_spec(**changes: object) -> AgentDeploymentSpec:
    pools = [
        PoolSpec(id="llm-llama-3.1-8b-0", kind="llm", model="llama-3.1-8b", role="unified", device="H100-80GB",
                 replicas=2, node_selector={"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"},
                 resources=Resources(requests={"nvidia.com/gpu": "1", "cpu": "4"}, limits={"nvidia.com/gpu": "1"})),
        PoolSpec(id="llm-qwen2.5-7b-1", kind="llm", model="qwen2.5-7b", role="unified", device="H100-80GB",
                 replicas=1, tensor_parallel=2, engine="vllm",
                 resources=Resources(requests={"nvidia.com/gpu": "2"}, limits={"nvidia.com/gpu": "2"})),
        PoolSpec(id="tool-search-2", kind="tool", device="cpu", replicas=1, cpu_cores=2,
                 resources=Resources(requests={"cpu": "2"})),
    ]
    fields: dict[str, object] = {"agent": AgentSource(file="rag.py", name="answer"), "pools": pools,
                                 "rate_qps": 2.0, "plan_hash": "abc"}
    fields.update(changes)
    return AgentDeploymentSpec.model_validate(fields)


def env_of(container: dict) -> dict[str, str]:
    return {e["name"]: e.get("value", "<from>") for e in container["env"]}


def test_children_one_statefulset_and_headless_service_per_pool_owned_by_the_resource() -> None:
    want = desired(OWNER, make_spec())
    assert [p.name for p in want.pools] == ["demo-llm-llama-3-1-8b-0", "demo-llm-qwen2-5-7b-1", "demo-tool-search-2"]
    children = [want.router_config, want.router, *want.services,
                *[obj for p in want.pools for obj in (p.statefulset, p.service)]]
    for obj in children:
        assert DNS_1035.match(obj["metadata"]["name"]), obj["metadata"]["name"]
        assert obj["metadata"]["namespace"] == "team-a"
        assert obj["metadata"]["ownerReferences"] == [{
            "apiVersion": "plait.dev/v1alpha1", "kind": "AgentDeployment", "name": "demo", "uid": "0b7c-uid",
            "controller": True, "blockOwnerDeletion": True}]
    llm = want.pools[0].statefulset
    assert llm["spec"]["replicas"] == 2 and llm["spec"]["serviceName"] == "demo-llm-llama-3-1-8b-0"
    pod = llm["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}
    (worker,) = pod["containers"]
    assert worker["resources"] == {"requests": {"nvidia.com/gpu": "1", "cpu": "4"}, "limits": {"nvidia.com/gpu": "1"}}
    assert worker["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    env = env_of(worker)
    assert env["PLAIT_ROLE"] == "worker" and env["PLAIT_POOL_ID"] == "llm-llama-3.1-8b-0"
    assert env["PLAIT_AGENT"] == "/etc/plait/agent/rag.py:answer"
    assert env["PLAIT_RENDEZVOUS"] == "demo-llm-llama-3-1-8b-0.team-a.svc"
    assert next(e for e in worker["env"] if e["name"] == "PLAIT_CPUS")["valueFrom"] == {"resourceFieldRef": {
        "containerName": "worker", "resource": "requests.cpu", "divisor": "1"}}   # torch's threads
    assert {"name": "agent", "configMap": {"name": "demo-agent"}} in pod["volumes"]
    service = want.pools[0].service["spec"]
    assert service["clusterIP"] == "None" and service["publishNotReadyAddresses"] is True
    assert service["selector"] == llm["spec"]["selector"]["matchLabels"] == llm["spec"]["template"]["metadata"]["labels"]
    assert "nodeSelector" not in want.pools[2].statefulset["spec"]["template"]["spec"]
    assert want.endpoint == "http://demo-router.team-a.svc:8000"


def test_workers_attach_to_the_router_through_its_headless_control_service() -> None:
    want = desired(OWNER, make_spec())
    worker = env_of(want.pools[0].statefulset["spec"]["template"]["spec"]["containers"][0])
    assert worker["PLAIT_ROUTER_HOST"] == "demo-router-control.team-a.svc"
    router_pod = want.router["spec"]["template"]
    (router,) = router_pod["spec"]["containers"]
    assert env_of(router)["PLAIT_CONTROL_PORTS"] == worker["PLAIT_CONTROL_PORTS"] == "5555,5556,5557"
    assert [(p["name"], p["containerPort"]) for p in router["ports"]] == [
        ("http", 8000), ("calls", 5555), ("answers", 5556), ("store", 5557)]
    control = want.control_service
    assert control["metadata"]["name"] == "demo-router-control"
    # published before the router is ready: it is ready only once the workers, which need it, have attached
    assert control["spec"]["clusterIP"] == "None" and control["spec"]["publishNotReadyAddresses"] is True
    assert control["spec"]["selector"] == router_pod["metadata"]["labels"]
    assert [(p["name"], p["port"]) for p in control["spec"]["ports"]] == [
        ("calls", 5555), ("answers", 5556), ("store", 5557)]
    assert [p["name"] for p in want.router_service["spec"]["ports"]] == ["http"]   # clients reach the API only

    # the control ports and the pools (Gloo pairs, vLLM) take traffic from the deployment's own pods only
    pools, router_policy = want.network_policies
    own = [{"podSelector": {"matchLabels": {"plait.dev/deployment": "demo", "app.kubernetes.io/managed-by":
                                            "plait-operator"}}}]
    pool_labels = want.pools[0].statefulset["spec"]["template"]["metadata"]["labels"]
    assert pools["spec"]["podSelector"]["matchLabels"].items() <= pool_labels.items()
    assert pools["spec"]["ingress"] == [{"from": own}]
    assert router_policy["spec"]["podSelector"]["matchLabels"] == router_pod["metadata"]["labels"]
    assert router_policy["spec"]["ingress"] == [{"from": own}, {"ports": [{"port": 8000, "protocol": "TCP"}]}]
    assert all(own[0]["podSelector"]["matchLabels"].items() <= labels.items()
               for labels in (pool_labels, router_pod["metadata"]["labels"]))


def test_vllm_pool_runs_the_openai_server_and_the_router_reaches_it_through_plait_yaml() -> None:
    want = desired(OWNER, make_spec())
    vllm = want.pools[1].statefulset["spec"]["template"]["spec"]
    (server,) = vllm["containers"]
    assert server["image"].startswith("vllm/vllm-openai:")
    assert server["args"][:6] == ["--model", "qwen2.5-7b", "--served-model-name", "qwen2.5-7b",
                                  "--tensor-parallel-size", "2"]
    assert server["readinessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert server["env"] == [{"name": "VLLM_API_KEY", "valueFrom": {"secretKeyRef": {   # the router's key, which
        "name": "demo-api-key", "key": "api-key"}}}]                                   # it sends to its vLLM pools
    assert want.pools[1].service["spec"]["publishNotReadyAddresses"] is False   # DNS answers ready servers only
    settings = RunSettings.model_validate(yaml.safe_load(want.router_config["data"]["plait.yaml"]))
    assert settings.endpoints == {"qwen2.5-7b": "http://demo-llm-qwen2-5-7b-1.team-a.svc:8000/v1"}
    router_pod = want.router["spec"]["template"]["spec"]
    sources = router_pod["volumes"][0]["projected"]["sources"]
    assert sources == [{"configMap": {"name": "demo-agent"}}, {"configMap": {"name": "demo-router"}}]
    services = yaml.safe_load(env_of(router_pod["containers"][0])["PLAIT_POOL_SERVICES"])
    assert services == {"llm-llama-3.1-8b-0": "demo-llm-llama-3-1-8b-0.team-a.svc",
                        "tool-search-2": "demo-tool-search-2.team-a.svc"}


def test_weights_from_a_claim_or_an_init_container() -> None:
    claim = desired(OWNER, make_spec(), Weights.parse("pvc:llm-weights"))
    pod = claim.pools[1].statefulset["spec"]["template"]["spec"]
    assert {"name": "weights", "persistentVolumeClaim": {"claimName": "llm-weights", "readOnly": True}} in pod["volumes"]
    assert pod["containers"][0]["args"][1] == "/models/qwen2.5-7b"
    tool_pod = claim.pools[2].statefulset["spec"]["template"]["spec"]
    assert all(v["name"] != "weights" for v in tool_pod["volumes"])   # only LLM pools read weights
    image = desired(OWNER, make_spec(), Weights.parse("image:registry.local/llama-weights:1"))
    pod = image.pools[0].statefulset["spec"]["template"]["spec"]
    assert pod["initContainers"][0]["image"] == "registry.local/llama-weights:1"
    assert env_of(pod["containers"][0])["PLAIT_WEIGHTS_DIR"] == "/models"
    search = make_spec().pools[2].model_copy(update={"id": "search-wiki-3", "kind": "search"})
    pod = desired(OWNER, make_spec(pools=[search]), Weights.parse("pvc:llm-weights")).pools[0].statefulset
    pod = pod["spec"]["template"]["spec"]   # a search pool reads its index from the same volume
    assert env_of(pod["containers"][0])["PLAIT_INDEXES_DIR"] == "/models/indexes"
    assert "PLAIT_WEIGHTS_DIR" not in env_of(pod["containers"][0])
    assert {"name": "weights", "mountPath": "/models", "readOnly": True} in pod["containers"][0]["volumeMounts"]
    with pytest.raises(SpecRefused, match="must be 'pvc:CLAIM' or 'image:REF', got 's3://bucket'"):
        Weights.parse("s3://bucket")


def test_refused_specs_name_the_pool_and_the_fix() -> None:
    prefill = make_spec().pools[1].model_copy(update={"role": "prefill"})
    with pytest.raises(SpecRefused, match=r"pool 'llm-qwen2.5-7b-1': engine vllm serves the unified role only, "
                                          r"got role 'prefill'") as err:
        desired(OWNER, make_spec(pools=[prefill]))
    assert err.value.reason == "UnsupportedEngine"
    twins = [make_spec().pools[2], make_spec().pools[2].model_copy(update={"id": "TOOL_search.2"})]
    with pytest.raises(SpecRefused, match="would both be named 'demo-tool-search-2'"):
        desired(OWNER, make_spec(pools=twins))


def test_long_names_are_cut_to_the_limit_and_stay_distinct() -> None:
    a = pool_name("a" * 40, "llm-" + "x" * 30 + "-0")
    b = pool_name("a" * 40, "llm-" + "x" * 30 + "-1")
    assert len(a) <= 52 and len(b) <= 52 and a != b and DNS_1035.match(a)
    assert pool_name("a" * 40, "llm-" + "x" * 30 + "-0") == a
    assert child_name("7up", "router") == "p-7up-router"


def _settle(obj: dict, ready: int | None = None) -> dict:
    """`obj` as the API would return it once its controller ran it with `ready` replicas ready."""
    have = copy.deepcopy(obj)
    replicas = have["spec"]["replicas"]
    have["metadata"]["generation"] = 3
    have["status"] = {"observedGeneration": 3, "replicas": replicas, "updatedReplicas": replicas,
                      "readyReplicas": replicas if ready is None else ready}
    return have


def test_a_changed_spec_rolls_one_pool_at_a_time() -> None:
    old = desired(OWNER, make_spec())
    current = {p.name: _settle(p.statefulset) for p in old.pools}
    new = desired(OWNER, make_spec(plan_hash="def"))   # a new plan changes every pool's template
    assert all(new.pools[i].statefulset["metadata"]["annotations"][ANNOTATION_SPEC_HASH]
               != old.pools[i].statefulset["metadata"]["annotations"][ANNOTATION_SPEC_HASH] for i in range(3))
    first = rollout.step(new, current)
    assert [p.pool.id for p in first.apply] == ["llm-llama-3.1-8b-0"]
    assert [p.pool.id for p in first.waiting] == ["llm-qwen2.5-7b-1", "tool-search-2"]
    current[new.pools[0].name] = _settle(new.pools[0].statefulset, ready=1)      # updated, one replica not ready
    assert [p.pool.id for p in rollout.step(new, current).apply] == ["llm-llama-3.1-8b-0"]
    current[new.pools[0].name] = _settle(new.pools[0].statefulset)
    second = rollout.step(new, current)
    assert [p.pool.id for p in second.apply] == ["llm-llama-3.1-8b-0", "llm-qwen2.5-7b-1"]
    assert second.blocked_by == "llm-qwen2.5-7b-1"
    missing = rollout.step(new, {})                 # nothing exists yet: every pool is created at once
    assert len(missing.apply) == 3 and not missing.waiting


def test_status_ready_only_when_every_pool_is_ready_then_degraded() -> None:
    want = desired(OWNER, make_spec())
    children = {p.name: _settle(p.statefulset) for p in want.pools}
    children[want.router["metadata"]["name"]] = _settle(want.router)
    children[want.pools[0].name] = _settle(want.pools[0].statefulset, ready=1)
    step = rollout.step(want, children)
    starting = rollout.status(want, step, children, 4, AgentDeploymentStatus(), "t0")
    by_type = {c.type: c for c in starting.conditions}
    assert by_type["Ready"].status == "False" and by_type["Ready"].message == "not ready: llm-llama-3.1-8b-0 1/2"
    assert by_type["Deploying"].status == "True" and by_type["Degraded"].status == "False"
    assert [(p.id, p.ready_replicas) for p in starting.pools] == [
        ("llm-llama-3.1-8b-0", 1), ("llm-qwen2.5-7b-1", 1), ("tool-search-2", 1)]
    children[want.pools[0].name] = _settle(want.pools[0].statefulset)
    ready = rollout.status(want, rollout.step(want, children), children, 4, starting, "t1")
    assert {c.type: c.status for c in ready.conditions} == {
        "Planned": "True", "Deploying": "False", "Ready": "True", "Degraded": "False"}
    assert ready.conditions[2].last_transition_time == "t1" and ready.conditions[0].last_transition_time == "t0"
    assert ready.observed_generation == 4 and ready.endpoint == want.endpoint
    children[want.pools[2].name] = _settle(want.pools[2].statefulset, ready=0)   # a replica fell out later
    degraded = rollout.status(want, rollout.step(want, children), children, 4, ready, "t2")
    assert {c.type: c.reason for c in degraded.conditions}["Degraded"] == "ReplicasUnready"
    assert {c.type: c.status for c in degraded.conditions}["Deploying"] == "False"
    err = SpecRefused("UnsupportedEngine", "pool 'x': no")
    refused = rollout.refused(err, 5, ready, "t3")
    assert refused.conditions[0].model_dump(exclude={"last_transition_time"}) == {
        "type": "Planned", "status": "False", "reason": "UnsupportedEngine", "message": "pool 'x': no"}


def test_operator_command_refuses_a_missing_or_broken_kubeconfig(tmp_path) -> None:
    from typer.testing import CliRunner

    from plait.cli import app

    missing = CliRunner().invoke(app, ["operator", "--kubeconfig", str(tmp_path / "nope"), "-n", "x"])
    assert missing.exit_code == 2
    assert f"--kubeconfig {tmp_path / 'nope'}: no such file" in missing.output
    broken = tmp_path / "kubeconfig"
    broken.write_text("apiVersion: v1\nkind: Config\nclusters: []\n")
    refused = CliRunner().invoke(app, ["operator", "--kubeconfig", str(broken), "-n", "x"])
    assert refused.exit_code == 2
    assert f"--kubeconfig {broken} is not a usable kubeconfig: " in refused.output
