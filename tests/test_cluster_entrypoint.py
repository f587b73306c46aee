"""The container's entrypoint, run as a local process against an AgentDeployment's ConfigMap written to disk (as
the pod mounts it): a worker replica starts the pool's worker and answers its health check; bad settings fail
with the fix."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from _cluster import AGENT, cluster_plan  # noqa: F401  (a session fixture)

from plait.cluster.entrypoint import EntrypointError, Settings, router_argv
from plait.cluster.from_plan import deployment_bundle
from plait.planner.plan import Plan
from plait.scheduler.local import check_plan
from plait.sdk import trace
from plait.sdk.loader import load_agent


@pytest.fixture(scope="module")
def mounted(cluster_plan: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:  # noqa: F811
    """The ConfigMap's files in a folder (what the kubelet mounts), and the tool pool's id."""
    bundle = deployment_bundle(AGENT, cluster_plan, name="ask")
    folder = tmp_path_factory.mktemp("configmap")
    for key, text in bundle.config_map["data"].items():
        (folder / key).write_text(text)
    return folder, next(p.id for p in bundle.spec.pools if p.kind == "tool")


def _env(folder: Path, run_dir: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "PLAIT_ROLE": "worker", "PLAIT_AGENT_DIR": str(folder), "PLAIT_RUN_DIR": str(run_dir),
            "PLAIT_HEALTH_PORT": "0", **extra}


def _start(folder: Path, pool: str, run_dir: Path) -> tuple[subprocess.Popen[str], str]:
    """The entrypoint as a worker pod's container (replica 1 of `pool`), and its health URL once ready."""
    env = _env(folder, run_dir, PLAIT_POOL_ID=pool, PLAIT_POD_NAME=f"ask-{pool}-1",
               PLAIT_RENDEZVOUS=f"ask-{pool}.default.svc", PLAIT_ROUTER="ask-router.default.svc:8000")
    proc = subprocess.Popen([sys.executable, "-m", "plait.cluster.entrypoint"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, cwd=run_dir)   # not the repository: the mount only
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith(f"worker {pool}/1 ready"), line + (proc.stdout.read() if proc.poll() is not None else "")
    return proc, line.split("health on ")[1].split(";")[0].replace("0.0.0.0", "127.0.0.1")


def test_a_worker_pod_starts_its_worker_and_answers_health_checks(mounted, tmp_path: Path) -> None:
    folder, pool = mounted
    proc, url = _start(folder, pool, tmp_path)
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            health = json.loads(answer.read())
            assert answer.status == 200
        assert health["ok"] and health["replica"] == 1 and health["address"] == f"ask-{pool}-1.ask-{pool}.default.svc"
        assert health["router"] == "ask-router.default.svc:8000"
        worker = health["workers"][f"{pool}/1"]
        assert worker["pool"] == pool and worker["replica"] == 1 and worker["pid"] != proc.pid
        with pytest.raises(urllib.error.HTTPError, match="404"):
            urllib.request.urlopen(url.replace("/healthz", "/nothing"), timeout=10)
        proc.send_signal(signal.SIGTERM)   # the kubelet stopping the pod: the worker is stopped, exit 0
        assert proc.wait(timeout=20) == 0
        deadline = time.monotonic() + 10
        while _alive(worker["pid"]):
            assert time.monotonic() < deadline, "the worker outlived its container"
            time.sleep(0.1)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_the_container_exits_when_its_worker_dies(mounted, tmp_path: Path) -> None:
    folder, pool = mounted
    proc, url = _start(folder, pool, tmp_path)
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            pid = json.loads(answer.read())["workers"][f"{pool}/1"]["pid"]
        os.kill(pid, signal.SIGKILL)
        assert proc.wait(timeout=20) == 1   # Kubernetes restarts the container
        assert f"worker {pool}/1 exited" in (proc.stdout.read() if proc.stdout else "")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def test_bad_settings_fail_with_the_fix(mounted, tmp_path: Path) -> None:
    folder, pool = mounted
    pools = ", ".join(sorted(p.name.removesuffix(".program.json") for p in folder.glob("*.program.json")))
    cases = [({"PLAIT_POOL_ID": "llm-nope-0"}, f"To fix: set PLAIT_POOL_ID to one of {pools}"),
             ({"PLAIT_ROLE": "driver"}, "To fix: set PLAIT_ROLE to worker or router"),
             ({"PLAIT_AGENT_DIR": str(tmp_path)}, "holds no plan.json")]
    for extra, needle in cases:
        with pytest.raises(EntrypointError, match=re.escape(needle)):
            Settings.from_env(_env(folder, tmp_path, PLAIT_POOL_ID=pool) | extra)
    # as the container runs it: the message on stderr, exit status 2, no traceback
    done = subprocess.run([sys.executable, "-m", "plait.cluster.entrypoint"], capture_output=True, text=True,
                          env=_env(folder, tmp_path, PLAIT_POOL_ID="llm-nope-0"), timeout=60)
    assert done.returncode == 2 and done.stderr.startswith("error: PLAIT_POOL_ID is 'llm-nope-0'"), done.stderr
    assert "Traceback" not in done.stderr


def test_the_router_runs_plait_serve_on_the_mounted_agent(mounted, tmp_path: Path) -> None:
    folder, _ = mounted
    (tmp_path / "models" / "llama-3.1-8b").mkdir(parents=True)   # a checkpoint volume, one folder per model
    settings = Settings.from_env({"PLAIT_ROLE": "router", "PLAIT_AGENT_DIR": str(folder), "PLAIT_RUN_DIR": "/r",
                                  "PLAIT_WEIGHTS_DIR": str(tmp_path / "models"), "PLAIT_ROUTER_PORT": "8001"})
    argv = router_argv(settings)
    assert argv[:5] == ["plait", "serve", f"{folder}/cluster_agent.py:ask", "--plan", str(folder)]
    assert argv[argv.index("--host") + 1] == "0.0.0.0" and argv[argv.index("--port") + 1] == "8001"
    assert argv[-2:] == ["--weights", f"llama-3.1-8b={tmp_path}/models/llama-3.1-8b"]
    # `plait serve --plan` checks the plan against the agent it traces: the mounted copy is the same graph
    plan = Plan.model_validate_json((folder / "plan.json").read_text())
    check_plan(plan, trace(load_agent(argv[2])), str(folder / "plan.json"))
