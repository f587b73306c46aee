"""The manifests (`plait manifests`) are current and valid for Kubernetes 1.30+, the Dockerfile lints clean, and a
plan becomes an AgentDeployment spec with the node selectors and resource requests of its devices."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from _cluster import AGENT, RUN, cluster_plan, make_plan  # noqa: F401  (a session fixture)

from plait.cli import app
from plait.cluster.devices import UnknownDeviceError
from plait.cluster.from_plan import BundleError, deployment_bundle, pool_spec
from plait.cluster.manifests import manifest_files
from plait.planner.plan import CallSite, Pool

ROOT = Path(__file__).resolve().parents[1]
K8S_VERSION = "1.30.0"   # the oldest version the manifests must be valid for (the test server is 1.20)


def test_checked_in_manifests_are_current(tmp_path: Path) -> None:
    done = RUN.invoke(app, ["manifests", "--out", str(tmp_path)])
    assert done.exit_code == 0, done.output
    fresh = {p.name: p.read_text() for p in tmp_path.iterdir()}
    checked_in = {p.name: p.read_text() for p in (ROOT / "manifests").iterdir()}
    stale = sorted(n for n in fresh.keys() | checked_in.keys() if fresh.get(n) != checked_in.get(n))
    assert not stale, f"manifests/ is out of step with the code in {stale}: run `plait manifests --out manifests/`"


@pytest.mark.parametrize("objects", manifest_files().values(), ids=list(manifest_files()))
def test_every_manifest_validates_against_kubernetes_schemas(objects: list[dict]) -> None:
    import kubernetes_validate

    for obj in objects:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)   # raises on any violation


def test_validation_catches_a_broken_manifest() -> None:
    """The check above can fail: a Role rule without verbs is refused."""
    import kubernetes_validate

    role = next(o for o in manifest_files()["20-rbac.yaml"] if o["kind"] == "Role")
    broken = {**role, "rules": [{"apiGroups": [""], "resources": ["pods"]}]}
    with pytest.raises(kubernetes_validate.ValidationError, match="verbs"):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_dockerfile_lints_clean() -> None:
    hadolint = shutil.which("hadolint") or str(Path(__import__("sys").executable).parent / "hadolint")
    done = subprocess.run([hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    targets = [line.split()[-1] for line in (ROOT / "Dockerfile").read_text().splitlines() if line.startswith("FROM")]
    assert {"cpu", "cuda"} <= set(targets)


def _pool(**kw) -> Pool:
    base = dict(id="p-0", kind="llm", model="llama-3.1-8b", role="unified", device="h100-sxm", replicas=2,
                call_sites=[CallSite(stage="s", loc="a.py:1", visits=1.0)])
    return Pool(**{**base, **kw})


def test_pool_requests_per_device_kind() -> None:
    whole = pool_spec(_pool(devices_per_replica=2, tensor_parallel=2))
    assert whole.node_selector == {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}
    assert whole.resources.requests == whole.resources.limits == {"nvidia.com/gpu": "2"}
    mig = pool_spec(_pool(device="a100-80gb", slice="mig", slice_fraction=3 / 7, mig_profile="3g.40gb"))
    assert mig.resources.requests == {"nvidia.com/mig-3g.40gb": "1"}
    assert pool_spec(_pool(device="mi300x")).resources.requests == {"amd.com/gpu": "1"}
    gaudi = pool_spec(_pool(device="gaudi3", runtime="remote"))
    assert gaudi.resources.requests == {"habana.ai/gaudi": "1"} and gaudi.engine == "vllm"
    tools = pool_spec(_pool(kind="tool", model=None, role=None, device="genoa-64", cpu_cores=3))
    assert tools.resources.requests == {"cpu": "3", "memory": "6Gi"} and not tools.resources.limits
    assert tools.node_selector == {"kubernetes.io/arch": "amd64"}
    host = pool_spec(_pool(kind="tool", model=None, role=None, device="l4", host_cpu=True, runtime="cpu", cpu_cores=1))
    assert host.resources.requests == {"cpu": "1", "memory": "2Gi"}
    assert host.node_selector == {"nvidia.com/gpu.product": "NVIDIA-L4"}   # the host cores of L4 servers


def test_unknown_device_is_refused_with_the_fix() -> None:
    with pytest.raises(UnknownDeviceError, match="pool 'p-0' runs on device 'tpu-v5'") as err:
        pool_spec(_pool(device="tpu-v5"))
    assert "cluster/devices.py" in str(err.value)


@pytest.fixture(scope="module")
def planned(cluster_plan: Path) -> Path:  # noqa: F811
    return cluster_plan


def test_bundle_of_a_plan(planned: Path) -> None:
    bundle = deployment_bundle(AGENT, planned, name="ask")
    kinds = {p.kind for p in bundle.spec.pools}
    assert {"llm", "tool"} <= kinds
    data = bundle.config_map["data"]
    assert {"cluster_agent.py", "plan.json", "placed.mlir"} <= set(data)
    assert {f"{p.id}.program.json" for p in bundle.spec.pools} <= set(data)
    assert bundle.spec.rate_qps == 2 and bundle.spec.sla.p95_ms == 5000
    assert bundle.spec.agent.config_map == "ask-agent"
    assert yaml.safe_load(data["plan.json"])["pools"][0]["id"] == bundle.spec.pools[0].id
    import kubernetes_validate

    kubernetes_validate.validate(bundle.config_map, K8S_VERSION, strict=True)   # keys, labels, shape


def test_config_map_over_one_mib_is_refused(tmp_path: Path, planned: Path) -> None:
    agent = tmp_path / "cluster_agent.py"
    shutil.copy(ROOT / "tests/agents/cluster_agent.py", agent)
    plan = make_plan(tmp_path / "plan", f"{agent}:ask")
    with agent.open("a") as f:   # a large constant after the agent: the graph (and the plan) stays the same
        f.write("\nDATA = '" + "x" * (1 << 20) + "'\n")
    with pytest.raises(BundleError, match=r"would be 1\.\d\d MiB, over Kubernetes' 1 MiB limit") as err:
        deployment_bundle(f"{agent}:ask", plan)
    assert "cluster_agent.py 1.00 MiB" in str(err.value) and "To fix" in str(err.value)


def test_stale_plan_is_refused(tmp_path: Path, planned: Path) -> None:
    agent = tmp_path / "cluster_agent.py"
    shutil.copy(ROOT / "tests/agents/cluster_agent.py", agent)
    plan = make_plan(tmp_path / "plan", f"{agent}:ask")
    agent.write_text(agent.read_text().replace("max_tokens=32", "max_tokens=33"))   # edited after planning
    with pytest.raises(BundleError, match="another version"):
        deployment_bundle(f"{agent}:ask", plan)


def test_docs_device_table_is_the_code() -> None:
    from plait.cluster.devices import DEVICE_NODES

    doc = (ROOT / "docs" / "cluster.md").read_text()
    for name, nodes in DEVICE_NODES.items():
        labels = ", ".join(f"`{k}={v}`" for k, v in nodes.labels.items()) or "(none)"
        resource = f"`{nodes.resource}`" if nodes.resource else "cpu, memory"
        assert f"| {name} | {labels} | {resource} |" in doc, name
