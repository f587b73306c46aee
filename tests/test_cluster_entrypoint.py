"""The container's entrypoint, run as local processes against an AgentDeployment's ConfigMap written to disk (as
the pods mount it), all on loopback: a router (`plait serve --attach`) and one worker pod per replica attach to each
other; the router drives the pods (its health names their processes, the tool runs in the tool pod, an embedding
crosses pods over a Gloo pair); a killed pod started again is taken back; the pods exit when their router dies.
Bad settings fail with the fix."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from _cluster import AGENT, RUN, Pod, cluster_plan, launch_entrypoint, make_plan  # noqa: F401  (a session fixture)
from test_serve import KEY, call, metric, wait_for

from plait.cli import app
from plait.cluster.entrypoint import EntrypointError, Settings, cpu_limit, router_argv, worker_threads
from plait.cluster.from_plan import deployment_bundle
from plait.planner.plan import Plan, graph_hash
from plait.scheduler.local import check_plan
from plait.sdk import trace
from plait.sdk.loader import load_agent

LOOKUP = "tests/agents/cluster_agent.py:lookup"


def _write_config_map(target: str, plan: Path, folder: Path, name: str) -> None:
    for key, text in deployment_bundle(target, plan, name=name).config_map["data"].items():
        (folder / key).write_text(text)


@pytest.fixture(scope="module")
def mounted(cluster_plan: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:  # noqa: F811
    """The ConfigMap's files of AGENT in a folder (what the kubelet mounts), and its tool pool's id."""
    folder = tmp_path_factory.mktemp("configmap")
    _write_config_map(AGENT, cluster_plan, folder, "ask")
    plan = Plan.model_validate_json((folder / "plan.json").read_text())
    return folder, next(p.id for p in plan.pools if p.kind == "tool")


@pytest.fixture(scope="module")
def lookup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, str]]:
    """LOOKUP's plan folder, its ConfigMap's files, and its pools (id -> kind): an encoder, a tool and an LLM."""
    plan = make_plan(tmp_path_factory.mktemp("lookup-plan"), LOOKUP)
    folder = tmp_path_factory.mktemp("lookup-configmap")
    _write_config_map(LOOKUP, plan, folder, "lk")
    pools = {p.id: p.kind for p in Plan.model_validate_json((plan / "plan.json").read_text()).pools}
    assert sorted(pools.values()) == ["encoder", "llm", "tool"] and all(
        p.replicas == 1 for p in Plan.model_validate_json((plan / "plan.json").read_text()).pools)
    return plan, folder, pools


def _env(folder: Path, run_dir: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "PLAIT_ROLE": "worker", "PLAIT_AGENT_DIR": str(folder), "PLAIT_RUN_DIR": str(run_dir),
            "PLAIT_HEALTH_PORT": "0", "PLAIT_BIND": "127.0.0.1", "PLAIT_ROUTER": "lk-router.default.svc:8000",
            **extra}


def _worker(folder: Path, pool: str, run_dir: Path, ports: str, notes: Path) -> tuple[Pod, str]:
    """Replica 0 of `pool` as its pod runs it (cwd: not the repository, the mount only), attaching to a router on
    loopback at `ports`; its health URL once loaded."""
    run_dir.mkdir(parents=True, exist_ok=True)
    pod = launch_entrypoint(_env(folder, run_dir, PLAIT_POOL_ID=pool, PLAIT_POD_NAME=f"lk-{pool}-0",
                       PLAIT_RENDEZVOUS=f"lk-{pool}.default.svc", PLAIT_ADDRESS="127.0.0.1",
                       PLAIT_ROUTER_HOST="127.0.0.1", PLAIT_CONTROL_PORTS=ports, PLAIT_NOTES=str(notes)), run_dir)
    line = pod.wait_line(f"worker {pool}/0 loaded")
    return pod, line.split("health on ")[1]


def _health(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


@pytest.fixture()
def router(lookup: tuple[Path, Path, dict[str, str]], tmp_path: Path) -> Iterator[tuple[Pod, str]]:
    """The router's container on loopback, its control ports chosen by the OS: (its pod, PLAIT_CONTROL_PORTS)."""
    _, folder, _ = lookup
    pod = launch_entrypoint({"PLAIT_ROLE": "router", "PLAIT_AGENT_DIR": str(folder), "PLAIT_RUN_DIR": str(tmp_path / "router"),
                   "PLAIT_ROUTER_PORT": "0", "PLAIT_CONTROL_PORTS": "0,0,0", "PLAIT_BIND": "127.0.0.1",
                   "PLAIT_API_KEY": KEY}, tmp_path)
    try:
        yield pod, pod.wait_line("PLAIT_CONTROL_PORTS=").rsplit("=", 1)[1]
    finally:
        pod.stop()


def test_worker_pods_attach_to_the_router_which_drives_them(lookup, router, tmp_path: Path) -> None:
    _, folder, pools = lookup
    router_pod, ports = router
    notes = tmp_path / "notes"
    pods: dict[str, Pod] = {}
    try:
        health = {}
        for pool in pools:
            pods[pool], health[pool] = _worker(folder, pool, tmp_path / pool, ports, notes)
        url = router_pod.wait_line("listening on ").split()[-1]
        for pool, pod in pods.items():   # the readiness probe: 200 once connected, naming where peers reach it
            wait_for(lambda u=health[pool]: _health(u)[0] == 200, 30)
            body = _health(health[pool])[1]
            assert body["worker"]["connected"] and body["worker"]["pid"] == pod.proc.pid and body["address"] == "127.0.0.1"
        status, _, answer = call(url, "/v1/agents/lookup/invoke", {"inputs": {"text": "first question"},
                                                                    "timeout_s": 120})
        assert status == 200, answer
        # the router started no worker of its own: each of its workers is a pod's process
        _, _, served = call(url, "/healthz")
        assert {k: v["pid"] for k, v in served["workers"].items()} == {f"{p}/0": pod.proc.pid for p, pod in pods.items()}
        tool = next(p for p, kind in pools.items() if kind == "tool")
        encoder = next(p for p, kind in pools.items() if kind == "encoder")
        # the tool ran in the tool pod, on the 384-dim embedding the encoder pod sent it over a Gloo pair
        assert notes.read_text().splitlines() == [f"{pods[tool].proc.pid} 384 first question"]
        assert any("rank 0 of a Gloo pair" in line for line in pods[encoder].lines)

        # the tool pod dies; the router notices, and takes back the pod Kubernetes starts in its place
        pods[tool].proc.kill()
        pods[tool].proc.wait()
        wait_for(lambda: isinstance(call(url, "/healthz")[2]["workers"][f"{tool}/0"], str), 20)
        pods[tool], _ = _worker(folder, tool, tmp_path / "tool-again", ports, notes)
        wait_for(lambda: metric(url, "plait_worker_restarts_total", worker=f"{tool}/0") == 1, 30)
        status, _, answer = call(url, "/v1/agents/lookup/invoke", {"inputs": {"text": "second question"},
                                                                    "timeout_s": 120})
        assert status == 200, answer
        assert notes.read_text().splitlines()[-1] == f"{pods[tool].proc.pid} 384 second question"

        # the kubelet stops the tool pod: it tells the router it leaves, finishes, exits 0; no call goes to it
        pods[tool].proc.send_signal(signal.SIGTERM)
        assert pods[tool].proc.wait(20) == 0
        driver_log = Path(router_pod.wait_line("logs in ").split("logs in ")[1].split("/;")[0]) / "driver.log"
        wait_for(lambda: f"worker {tool}/0 is leaving" in driver_log.read_text(), 10)
        status, _, answer = call(url, "/v1/agents/lookup/invoke", {"inputs": {"text": "no tool"}, "timeout_s": 2})
        assert status == 504 and notes.read_text().splitlines()[-1].endswith("second question"), answer

        # the router dies: every pod exits (1: Kubernetes starts it clean for the next router), saying why
        router_pod.proc.kill()
        for pool, pod in pods.items():
            if pool == tool:
                continue
            assert pod.proc.wait(30) == 1, pool
            assert pod.wait_line("went away; exiting so the pod starts clean", 5)
    finally:
        for pod in pods.values():
            pod.stop()


def test_a_pod_waits_for_its_router_unready_and_stops_on_sigterm(lookup, tmp_path: Path) -> None:
    _, folder, pools = lookup
    tool = next(p for p, kind in pools.items() if kind == "tool")
    with socket.socket() as free:   # a port nobody listens on: the router is not up yet
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    pod, url = _worker(folder, tool, tmp_path, f"{port},{port},{port}", tmp_path / "notes")
    try:
        status, body = _health(url)
        assert status == 503 and not body["worker"]["connected"] and not body["ok"]
        pod.proc.send_signal(signal.SIGTERM)   # the kubelet stopping the pod: a clean exit
        assert pod.proc.wait(timeout=20) == 0
    finally:
        pod.stop()


def test_a_router_whose_pods_do_not_attach_says_how_to_start_them(lookup) -> None:
    plan, _, _ = lookup
    done = RUN.invoke(app, ["serve", LOOKUP, "--plan", str(plan), "--port", "0", "--attach", "0,0,0",
                            "--attach-timeout-s", "1"])
    assert done.exit_code == 2, done.output
    assert "did not attach within 1 s" in done.output and "PLAIT_CONTROL_PORTS=" in done.output
    done = RUN.invoke(app, ["serve", LOOKUP, "--plan", str(plan), "--attach", "5555,x"])
    assert done.exit_code == 2 and "--attach is '5555,x', not three ports" in done.output, done.output


def test_bad_settings_fail_with_the_fix(mounted, tmp_path: Path) -> None:
    folder, pool = mounted
    pools = ", ".join(sorted(p.name.removesuffix(".program.json") for p in folder.glob("*.program.json")))
    cases = [({"PLAIT_POOL_ID": "llm-nope-0"}, f"To fix: set PLAIT_POOL_ID to one of {pools}"),
             ({"PLAIT_ROLE": "driver"}, "To fix: set PLAIT_ROLE to worker or router"),
             ({"PLAIT_AGENT_DIR": str(tmp_path)}, "holds no plan.json"),
             ({"PLAIT_CONTROL_PORTS": "5555,5556"}, "To fix: give CALLS,ANSWERS,STORE, e.g. 5555,5556,5557"),
             ({"PLAIT_ROUTER": ""}, "To fix: set PLAIT_ROUTER to the router Service's HOST:PORT")]
    for extra, needle in cases:
        with pytest.raises(EntrypointError, match=re.escape(needle)):
            Settings.from_env(_env(folder, tmp_path, PLAIT_POOL_ID=pool) | extra)
    (tmp_path / "indexes" / "wiki").mkdir(parents=True)   # a search pool's indexes: a folder each, and pairs
    settings = Settings.from_env(_env(folder, tmp_path, PLAIT_POOL_ID=pool, PLAIT_INDEXES_DIR=str(tmp_path / "indexes"),
                                      PLAIT_INDEXES="docs=/data/docs"))
    assert settings.indexes == (("wiki", str(tmp_path / "indexes" / "wiki")), ("docs", "/data/docs"))
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
    assert argv[:7] == [sys.executable, "-m", "plait.cli", "serve", f"{folder}/cluster_agent.py:ask", "--plan",
                        str(folder)]
    assert argv[argv.index("--host") + 1] == "0.0.0.0" and argv[argv.index("--port") + 1] == "8001"
    assert argv[argv.index("--attach") + 1] == "5555,5556,5557"   # the worker pods' PLAIT_CONTROL_PORTS default
    assert argv[-2:] == ["--weights", f"llama-3.1-8b={tmp_path}/models/llama-3.1-8b"]
    # `plait serve --plan` checks the plan against the agent it traces: the mounted copy is the same graph
    plan = Plan.model_validate_json((folder / "plan.json").read_text())
    check_plan(plan, trace(load_agent(argv[4])), str(folder / "plan.json"))


def test_an_agent_with_sub_agents_mounted_elsewhere_is_the_same_graph(tmp_path: Path) -> None:
    """plan.json names the graph it was made from; the pods trace the agent file from the mounted ConfigMap.
    A sub-agent's graph names its file too: only the file's name may count, not its folder."""
    target = "tests/agents/triage.py:triage"   # research and quick are sub-agents
    copy = tmp_path / "triage.py"
    copy.write_text(Path(target.split(":")[0]).read_text())
    assert graph_hash(trace(load_agent(target))) == graph_hash(trace(load_agent(f"{copy}:triage")))


def test_a_pods_threads_follow_its_cpu_limit_not_the_nodes_cores(tmp_path: Path) -> None:
    cpu_max = tmp_path / "cpu.max"
    for text, cores in (("250000 100000\n", 3), ("100000 100000\n", 1), ("max 100000\n", None), ("", None)):
        cpu_max.write_text(text)
        assert cpu_limit(cpu_max) == cores, text
    assert cpu_limit(tmp_path / "absent") is None   # cgroup v1, or not in a container
    # a pod sees the node's 64 cores: its request (PLAIT_CPUS) or its limit bounds torch's threads
    assert [worker_threads(64, None, 3), worker_threads(64, 2, 3), worker_threads(64, None, 0),
            worker_threads(2, None, 8)] == [3, 2, 64, 2]
