"""`plait submit`, `status` and `delete` against a real kube-apiserver (tests/_kube.py): the generated CRD is
installed by `plait manifests --apply` and enforces its schema, a second submit updates the resource, and each API failure (CRD missing,
invalid, forbidden, conflict, unreachable, not found) is one message naming its fix."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from _cluster import AGENT, RUN, cluster_plan, make_plan  # noqa: F401  (a session fixture)
from _kube import kube  # noqa: F401  (the module-scoped control plane)

from plait.cli import app
from plait.cluster.api_errors import ClusterAPIError, api_errors
from plait.cluster.manifests import manifest_files
from plait.cluster.spec import GROUP, PLURAL, VERSION

NS = "default"


@pytest.fixture(scope="module")
def plans(cluster_plan: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:  # noqa: F811
    """Two plans of the same agent: at its own rate, and at a higher one (another plan.json)."""
    return cluster_plan, make_plan(tmp_path_factory.mktemp("plan2"), qps=6)


def _plait(kubeconfig: Path, *args: str):
    return RUN.invoke(app, [*args, "--kubeconfig", str(kubeconfig), "-n", NS])


def _fails(done, *needles: str) -> str:
    assert done.exit_code == 2, done.output
    said = done.stderr
    assert said.startswith("error: ") and "To fix" in said and "Traceback" not in said, said
    for needle in needles:
        assert needle in said, said
    return said


def test_submit_before_the_crd_is_installed_says_to_install_it(kube, plans) -> None:  # noqa: F811
    from kubernetes import client

    done = _plait(kube.kubeconfig, "submit", AGENT, "--plan", str(plans[0]))
    _fails(done, "is not installed", "plait manifests --out manifests/ --apply")
    left = client.CoreV1Api(kube.client()).list_namespaced_config_map(NS).items
    assert "ask-agent" not in [c.metadata.name for c in left]   # a refused submit leaves nothing behind


def test_the_server_accepts_the_generated_manifests_and_enforces_the_crd_schema(kube, tmp_path: Path) -> None:  # noqa: F811
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    api = kube.client()
    args = ["manifests", "--out", str(tmp_path), "--apply", "--kubeconfig", str(kube.kubeconfig)]
    first, again = RUN.invoke(app, args), RUN.invoke(app, args)
    assert first.exit_code == 0 and again.exit_code == 0, first.output + again.output
    assert "CustomResourceDefinition/agentdeployments.plait.dev created" in first.output
    assert "Role/plait-operator created" in first.output and "Deployment/plait-operator created" in first.output
    objects = sum(len(group) for group in manifest_files("plait").values())
    assert first.output.count(" created") == objects
    assert "created" not in again.output and again.output.count(" configured") == objects   # idempotent
    rules = client.RbacAuthorizationV1Api(api).read_namespaced_role("plait-operator", "plait").rules
    assert any("agentdeployments" in r.resources and "patch" in r.verbs for r in rules)
    bad = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "AgentDeployment", "metadata": {"name": "bad"},
           "spec": {"agent": {"file": "a.py", "name": "a"}, "rateQps": 1,
                    "pools": [{"id": "p", "kind": "llm", "device": "h200", "replicas": -1}]}}
    objects = client.CustomObjectsApi(api)
    with pytest.raises(ApiException) as raw:
        objects.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, bad)
    assert raw.value.status == 422 and "replicas" in raw.value.body
    with pytest.raises(ClusterAPIError, match=r"Invalid \(422\).*replicas") as err:
        with api_errors("create AgentDeployment bad", NS, kube.server):
            objects.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, bad)
    assert "CRD's schema" in str(err.value)


def test_submit_creates_the_resource_and_its_config_map(kube, plans) -> None:  # noqa: F811
    from kubernetes import client

    done = _plait(kube.kubeconfig, "submit", AGENT, "--plan", str(plans[0]))
    assert done.exit_code == 0, done.output
    assert "agentdeployment.plait.dev/ask created in namespace default (generation 1" in done.output
    api = kube.client()
    obj = client.CustomObjectsApi(api).get_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "ask")
    pools = {p["id"]: p for p in obj["spec"]["pools"]}
    llm = next(p for p in pools.values() if p["kind"] == "llm")
    tool = next(p for p in pools.values() if p["kind"] == "tool")
    assert llm["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-A40"}   # the plan's a40 (cluster.devices)
    assert llm["resources"] == {"requests": {"nvidia.com/gpu": "1"}, "limits": {"nvidia.com/gpu": "1"}}
    assert tool["resources"]["requests"]["cpu"] == "1"
    cm = client.CoreV1Api(api).read_namespaced_config_map("ask-agent", NS)
    assert {"cluster_agent.py", "plan.json", "placed.mlir"} | {f"{p}.program.json" for p in pools} == set(cm.data)
    owner = cm.metadata.owner_references[0]
    assert (owner.kind, owner.name, owner.uid) == ("AgentDeployment", "ask", obj["metadata"]["uid"])


def test_a_second_submit_with_a_changed_plan_updates_it(kube, plans) -> None:  # noqa: F811
    from kubernetes import client

    objects = client.CustomObjectsApi(kube.client())
    before = objects.get_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "ask")
    refused = _plait(kube.kubeconfig, "submit", AGENT, "--plan", str(plans[1]), "--weights", "s3://bucket")
    said = " ".join(refused.output.replace("│", " ").split())   # typer's box wraps the message
    assert refused.exit_code == 2 and "expected pvc:CLAIM or image:REF, got 's3://bucket'" in said, said
    done = _plait(kube.kubeconfig, "submit", AGENT, "--plan", str(plans[1]), "--weights", "pvc:llm-weights")
    assert done.exit_code == 0, done.output
    assert "agentdeployment.plait.dev/ask updated" in done.output and "(generation 2" in done.output
    after = objects.get_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "ask")
    assert after["metadata"]["generation"] == before["metadata"]["generation"] + 1
    assert after["spec"]["planHash"] != before["spec"]["planHash"] and after["spec"]["rateQps"] == 6
    assert after["spec"]["weights"] == "pvc:llm-weights" and "weights" not in before["spec"]
    assert after["metadata"]["uid"] == before["metadata"]["uid"]   # updated in place, not re-created


def test_status_shows_conditions_and_pools(kube) -> None:  # noqa: F811
    from kubernetes import client

    done = _plait(kube.kubeconfig, "status", "ask")
    assert done.exit_code == 0, done.output
    assert "no status yet" in done.output and "tool-tidy-0" in done.output
    objects = client.CustomObjectsApi(kube.client())
    spec = objects.get_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "ask")["spec"]
    status = {"observedGeneration": 2, "endpoint": "http://ask-router.default.svc:8000",
              "conditions": [{"type": "Ready", "status": "False", "reason": "PoolsStarting",
                              "message": "1/2 pools ready", "lastTransitionTime": "2026-11-30T19:00:00Z"}],
              "pools": [{"id": p["id"], "replicas": p["replicas"], "readyReplicas": 0 if p["kind"] == "llm" else
                         p["replicas"]} for p in spec["pools"]],
              "kopf": {"progress": {}}}   # kopf's own field: kept by the schema, ignored by `status`
    objects.patch_namespaced_custom_object_status(GROUP, VERSION, NS, PLURAL, "ask", {"status": status})
    done = _plait(kube.kubeconfig, "status", "ask")
    assert done.exit_code == 0, done.output
    for needle in ("generation 2, observed 2", "http://ask-router.default.svc:8000", "PoolsStarting",
                   "1/2 pools ready", "llm-llama-3.1-8b-0", "nvidia.com/gpu=1"):
        assert needle in done.output, done.output


def test_forbidden_names_the_namespace_and_the_fix(kube, plans, tmp_path: Path) -> None:  # noqa: F811
    from kubernetes import client

    core = client.CoreV1Api(kube.client())
    core.create_namespaced_service_account(NS, {"metadata": {"name": "nobody"}})
    token = core.create_namespaced_service_account_token(
        "nobody", NS, client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(audiences=["https://kubernetes.default.svc"]))).status.token
    config = kube.write_kubeconfig(tmp_path / "nobody", token)
    _fails(_plait(config, "submit", AGENT, "--plan", str(plans[0])), "Forbidden (403)",
           "system:serviceaccount:default:nobody", "kubectl auth can-i --list -n default")
    _fails(_plait(config, "status", "ask"), "Forbidden (403)")


def test_conflict_says_to_run_again(kube) -> None:  # noqa: F811
    from kubernetes import client

    objects = client.CustomObjectsApi(kube.client())
    stale = objects.get_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "ask")
    objects.patch_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "ask", {"metadata": {"labels": {"x": "1"}}})
    with pytest.raises(ClusterAPIError, match=r"Conflict \(409\).*\n  To fix: .*run the command again") as err:
        with api_errors("update AgentDeployment ask", NS, kube.server):
            objects.replace_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "ask", stale)
    assert err.value.status == 409


def test_unreachable_server_says_to_start_it(kube, plans, tmp_path: Path) -> None:  # noqa: F811
    import socket

    with socket.socket() as s:   # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = tmp_path / "down"
    config.write_text(kube.kubeconfig.read_text().replace(f":{kube.port}", f":{port}"))
    started = time.monotonic()
    said = _fails(_plait(config, "submit", AGENT, "--plan", str(plans[0])), "cannot reach the Kubernetes API server",
                  f"127.0.0.1:{port}", "scripts/k8s/start.sh")
    assert time.monotonic() - started < 10, "no retries against a server that is down"
    assert len(said.strip().splitlines()) == 2
    _fails(RUN.invoke(app, ["status", "ask", "--kubeconfig", str(tmp_path / "missing")]), "cannot read kubeconfig")


def test_delete_removes_the_resource_and_its_config_map(kube) -> None:  # noqa: F811
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    done = _plait(kube.kubeconfig, "delete", "ask")
    assert done.exit_code == 0 and "agentdeployment.plait.dev/ask deleted" in done.output, done.output
    with pytest.raises(ApiException) as gone:
        client.CoreV1Api(kube.client()).read_namespaced_config_map("ask-agent", NS)
    assert gone.value.status == 404
    _fails(_plait(kube.kubeconfig, "status", "ask"), "NotFound (404)", "kubectl get agentdeployments -n default")
    _fails(_plait(kube.kubeconfig, "delete", "ask"), "NotFound (404)")
