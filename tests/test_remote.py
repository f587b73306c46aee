"""Remote pools end to end: `plait serve --model` started here (port 0, an API key) is the OpenAI-compatible
endpoint; `plait cost --remote` measures it, its inventory lines plan an agent whose 70B model only that endpoint
can take (runtime remote, at the declared price), and `plait run` and `plait serve` of that plan send their LLM
calls there (the endpoint's own request counter rises by them). Bad inputs each get one clear error: an
unreachable URL, a wrong key, a missing variable, a key written where the variable's name belongs."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from _cluster import launch_entrypoint
from test_serve import KEY, Server, call, metric, start

ROOT = Path(__file__).resolve().parents[1]
AGENT = "tests/agents/remote_big.py:ask"
VAR = "PLAIT_TEST_REMOTE_KEY"
COMPLETIONS = {"route": "/v1/completions", "status": "200"}


def plait(*args: str, env: dict[str, str | None] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`plait ARGS` as a user runs it; env values of None remove the variable."""
    full = {**os.environ}
    for k, v in (env or {}).items():
        if v is None:
            full.pop(k, None)
        else:
            full[k] = v
    return subprocess.run([sys.executable, "-m", "plait.cli", *args], cwd=ROOT, env=full, text=True,
                          capture_output=True, timeout=timeout)


@pytest.fixture(scope="module")
def endpoint() -> Iterator[Server]:
    """plait's own engine behind /v1/completions, with an API key: llama-3.1-70b at its @tiny size."""
    server = start(["--model", "llama-3.1-70b", "--concurrency", "4", "--max-tokens", "64"], env={"PLAIT_API_KEY": KEY})
    yield server
    assert server.stop() == 0, "\n".join(server.lines)


@pytest.fixture(scope="module")
def planned(endpoint: Server, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    """`plait cost --remote` on the endpoint, its lines pasted into an inventory beside this machine, and the
    agent planned on it: (plan folder, the measured remote entry)."""
    out = plait("cost", "--remote", endpoint.url + "/v1", "--model", "llama-3.1-70b", "--api-key-env", VAR,
                "--price-per-hour", "0.5", "--budget-s", "60", env={VAR: KEY})
    assert out.returncode == 0, out.stdout + out.stderr
    assert "measured " + endpoint.url + "/v1 (model llama-3.1-70b)" in out.stdout
    snippet = out.stdout.split("paste into the inventory file (`plait plan --inventory FILE`):\n", 1)[1]
    remote = yaml.safe_load(snippet)["remote"][0]
    folder = tmp_path_factory.mktemp("remote")
    (folder / "inventory.yaml").write_text(yaml.safe_dump({"devices": {"local": 4}, "remote": [remote]}))
    plan = plait("plan", AGENT, "--inventory", str(folder / "inventory.yaml"), "--out", str(folder / "plan"))
    assert plan.returncode == 0, plan.stdout + plan.stderr
    return folder / "plan", remote


def test_cost_remote_measures_the_endpoint(planned: tuple[Path, dict[str, object]], endpoint: Server) -> None:
    _, remote = planned
    assert remote["model"] == "llama-3.1-70b" and remote["served_model"] == "llama-3.1-70b"
    assert remote["base_url"] == endpoint.url + "/v1" and remote["api_key_env"] == VAR
    assert remote["price_per_hour"] == 0.5
    decode = remote["decode_tokens_per_s"]
    assert isinstance(decode, dict) and set(decode) == {1, 4} and all(v > 0 for v in decode.values())
    assert 0 < float(remote["overhead_s"]) < 2.0 and float(remote["prefill_tokens_per_s"]) > 0  # type: ignore[arg-type]
    # the figures were measured on this endpoint: the warm-up, 3 short, 3 long, 3 alone and 4 at once
    assert metric(endpoint.url, "plait_requests_total", **COMPLETIONS) >= 14


def test_the_plan_takes_the_endpoint_at_its_price(planned: tuple[Path, dict[str, object]]) -> None:
    folder, remote = planned
    plan = json.loads((folder / "plan.json").read_text())
    pool = next(p for p in plan["pools"] if p["kind"] == "llm")
    assert pool["runtime"] == "remote" and pool["device"] == "remote:llama-3-1-70b"
    assert pool["endpoint"]["base_url"] == remote["base_url"] and pool["endpoint"]["served_model"] == "llama-3.1-70b"
    assert pool["max_sequences"] == remote["max_sequences"]
    assert plan["fleet"] == {"local": 1, "remote:llama-3-1-70b": 1}
    assert plan["cost_per_hour"] == pytest.approx(0.5)   # the endpoint's declared price; this machine costs 0
    price = next(p for p in plan["prices"] if p["device"] == "remote:llama-3-1-70b")
    assert price["usd_per_hour"] == 0.5 and price["flag"] == "declared"


def test_run_and_serve_send_their_calls_to_the_endpoint(planned: tuple[Path, dict[str, object]],
                                                         endpoint: Server) -> None:
    folder, _ = planned
    before = metric(endpoint.url, "plait_requests_total", **COMPLETIONS)
    run = plait("run", AGENT, "--plan", str(folder), "--input", '{"text": " hello "}', "--requests", "3",
                env={VAR: KEY})
    assert run.returncode == 0, run.stdout + run.stderr
    assert "3 of 3 requests answered" in run.stdout and "TTFT llm_1 llama-3.1-70b" in run.stdout
    assert f"remote pool remote-llama-3-1-70b-0: its LLM calls go whole to {endpoint.url}/v1" in run.stdout
    after_run = metric(endpoint.url, "plait_requests_total", **COMPLETIONS)
    assert after_run == before + 3
    agent = start([AGENT, "--plan", str(folder)], env={VAR: KEY})
    try:
        status, _, out = call(agent.url, "/v1/agents/ask/invoke", {"inputs": {"text": "hi"}}, key=None)
        assert status == 200 and isinstance(out["output"], str) and out["output"], out
        # streamed: the endpoint's pieces arrive as token events, and add up to the answer
        status, _, text = call(agent.url, "/v1/agents/ask/invoke", {"inputs": {"text": "hi"}, "stream": True},
                               key=None)
        events = [block.split("\ndata: ", 1) for block in str(text).strip().split("\n\n")]
        pieces = [json.loads(data)["text"] for kind, data in events if kind == "event: token"]
        done = [json.loads(data) for kind, data in events if kind == "event: done"]
        assert status == 200 and pieces and done and "".join(pieces) == done[0]["output"], text
        _, _, health = call(agent.url, "/healthz", key=None)
        remote = next(w for w in health["workers"].values() if w["pool"] == "remote-llama-3-1-70b-0")
        assert remote["remote"] == endpoint.url + "/v1" and remote["calls_sent"] == 2
    finally:
        assert agent.stop() == 0, "\n".join(agent.lines)
    assert metric(endpoint.url, "plait_requests_total", **COMPLETIONS) == after_run + 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_bad_inputs_each_get_a_clear_error(planned: tuple[Path, dict[str, object]], endpoint: Server) -> None:
    url = endpoint.url + "/v1"
    dead = plait("cost", "--remote", f"http://127.0.0.1:{_free_port()}/v1")
    assert dead.returncode == 2 and "cannot reach http://127.0.0.1:" in dead.stderr
    assert "To fix: start the server, or correct base_url" in dead.stderr
    wrong = plait("cost", "--remote", url, "--api-key-env", VAR, env={VAR: "not-the-key"})
    assert wrong.returncode == 2 and f"{url} refused the API key (401)" in wrong.stderr
    assert f"To fix: set {VAR} to the key the server expects" in wrong.stderr
    unset = plait("cost", "--remote", url, "--api-key-env", VAR, env={VAR: None})
    assert unset.returncode == 2 and f"environment variable {VAR} (api_key_env) is not set" in unset.stderr
    model = plait("cost", "--remote", url, "--model", "llama-3.1-8b", "--api-key-env", VAR, env={VAR: KEY})
    assert model.returncode == 2 and "does not serve model 'llama-3.1-8b'" in model.stderr
    assert "llama-3.1-70b, llama-3.1-70b@tiny" in model.stderr
    # the run checks its endpoints before any worker starts
    folder, remote = planned
    run = plait("run", AGENT, "--plan", str(folder), "--input", '{"text": "x"}', env={VAR: None})
    assert run.returncode == 2 and f"remote pool remote-llama-3-1-70b-0 of {folder}/plan.json: environment variable {VAR}" \
        in run.stderr


def test_the_inventory_refuses_a_key_or_an_unknown_model(tmp_path: Path) -> None:
    from plait.planner.catalog import load_catalog
    from plait.planner.inventory import InventoryError, load_inventory

    entry = {"name": "a", "model": "llama-3.1-70b", "base_url": "http://10.0.0.5:8000/v1", "served_model": "m",
             "price_per_hour": 1.0, "prefill_tokens_per_s": 1000, "decode_tokens_per_s": {1: 50},
             "max_sequences": 8, "overhead_s": 0.01}
    path = tmp_path / "inventory.yaml"
    path.write_text(yaml.safe_dump({"remote": [{**entry, "api_key_env": "sk-live 0123456789abcdef"}]}))
    with pytest.raises(InventoryError, match="api_key_env names an environment variable") as err:
        load_inventory(path, load_catalog())
    assert "0123456789abcdef" not in str(err.value)   # the key itself is never printed back
    path.write_text(yaml.safe_dump({"remote": [{**entry, "model": "llama-3.1-7b"}]}))
    with pytest.raises(InventoryError, match="serves model 'llama-3.1-7b', which the catalog does not know"):
        load_inventory(path, load_catalog())
    path.write_text(yaml.safe_dump({"remote": [entry, entry]}))
    with pytest.raises(InventoryError, match="two remote endpoints are named 'a'"):
        load_inventory(path, load_catalog())


def _endpoint(**change: object) -> object:
    from plait.planner.endpoint import RemoteEndpoint

    return RemoteEndpoint(**{"name": "a", "model": "llama-3.1-70b", "base_url": "http://10.0.0.5:8000/v1",
                             "served_model": "meta-llama/Llama-3.1-70B-Instruct", "price_per_hour": 3.0,
                             "prefill_tokens_per_s": 5000, "decode_tokens_per_s": {1: 40.0, 8: 30.0},
                             "max_sequences": 8, "overhead_s": 0.05, **change})


def test_the_planner_takes_an_endpoint_as_given_capacity_at_its_price() -> None:
    """In process: the endpoint is a candidate like any pool. It takes a model nothing else can hold, at its
    declared price, with its latency from its figures; the same endpoint loses to this machine (free) for a small
    model; one the load would saturate is ruled out, and the error says why."""
    from plait.cli._agent import traced
    from plait.planner.inventory import Inventory
    from plait.planner.placement import InfeasiblePlacement
    from plait.planner.planning import plan_agent

    big = traced(AGENT)
    plan = plan_agent(big, source=AGENT, inventory=Inventory(devices={"local": 4}, remote=[_endpoint()]),
                      sweep_points=0).plan
    pool = next(p for p in plan.pools if p.kind == "llm")
    assert pool.runtime == "remote" and pool.endpoint is not None and pool.endpoint.price_per_hour == 3.0
    assert plan.cost_per_hour == pytest.approx(3.0)
    decode = next(s for s in plan.stages if s.stage.startswith("decode:"))
    # 8 tokens at 40 tokens/s (one call at a time at 0.5 req/s): 7 steps of 25 ms after the first token
    assert decode.latency_p50_s == pytest.approx(7 / 40.0, rel=0.05)
    prefill = next(s for s in plan.stages if s.stage.startswith("prefill:"))
    assert prefill.latency_p50_s > 0.05   # the endpoint's overhead is in its first token
    small = traced("tests/agents/serve_echo.py:echo")
    cheap = plan_agent(small, source="tests/agents/serve_echo.py:echo", scale="tiny", sweep_points=0,
                       inventory=Inventory(devices={"local": 4}, remote=[_endpoint(model="llama-3.2-1b")])).plan
    assert all(p.endpoint is None for p in cheap.pools) and cheap.cost_per_hour == 0.0
    with pytest.raises(InfeasiblePlacement, match=r"remote endpoint remote:a: 0.5 calls/s would keep .* of its 1 "
                                                  r"sequences busy"):
        plan_agent(big, source=AGENT, sweep_points=0, inventory=Inventory(
            devices={"local": 4}, remote=[_endpoint(max_sequences=1, decode_tokens_per_s={1: 2.0})]))


def test_plait_yaml_endpoints_move_a_planned_remote_pool(planned: tuple[Path, dict[str, object]]) -> None:
    """plait.yaml's `endpoints: {MODEL: URL}` reaches the plan's remote pool of MODEL at another address; a model
    no remote pool serves is an error naming the fix."""
    from plait.planner.plan import Plan
    from plait.scheduler.local import with_endpoints
    from plait.sdk.errors import PlaitError

    folder, _ = planned
    plan = Plan.model_validate_json((folder / "plan.json").read_text())
    moved = with_endpoints(plan, {"llama-3.1-70b": "http://tunnel.example:8000/v1/"}, "plan.json")
    pool = next(p for p in moved.pools if p.endpoint is not None)
    assert pool.endpoint is not None and pool.endpoint.base_url == "http://tunnel.example:8000/v1"
    with pytest.raises(PlaitError, match=r"endpoints names model 'llama-3.1-8b', but no remote pool of plan.json "
                                         r"serves it \(remote pools: remote-llama-3-1-70b-0 \(llama-3.1-70b\); unified LLM pools: "
                                         r"none\)"):
        with_endpoints(plan, {"llama-3.1-8b": "http://x:1/v1"}, "plan.json")


def test_a_router_of_attached_pods_measures_and_reaches_its_vllm_pool(
        planned: tuple[Path, dict[str, object]], endpoint: Server, tmp_path: Path) -> None:
    """On a cluster a vLLM pool is a StatefulSet the operator names in the router's plait.yaml; the router waits for
    it, measures it (as `plait cost --remote`), spawns that pool's forwarding worker beside itself, and waits for the
    tool pod to attach. Here `plait serve --model` stands in for vLLM at the Service's address. A plan's remote pool
    (an endpoint outside the cluster) gets no pods at all."""
    from plait.cluster.from_plan import deployment_bundle
    from plait.cluster.reconcile import Owner, desired

    assert [p.kind for p in deployment_bundle(AGENT, planned[0], name="big").spec.pools] == ["tool"]
    plan = plait("plan", AGENT, "--out", str(tmp_path / "plan"), "--sweep", "0", "--no-simulate")   # 70B on GPUs
    assert plan.returncode == 0, plan.stdout + plan.stderr
    bundle = deployment_bundle(AGENT, tmp_path / "plan", name="big", vllm=True)
    engines = {p.kind: p.engine for p in bundle.spec.pools}
    assert engines == {"tool": "plait", "llm": "vllm"}
    settings = yaml.safe_load(desired(Owner("big", "ns", "uid"), bundle.spec).router_config["data"]["plait.yaml"])
    assert list(settings["endpoints"]) == ["llama-3.1-70b"]   # the operator names the pool's Service there
    mount = tmp_path / "agent"   # the router's projected volume: the agent ConfigMap and the router's plait.yaml
    mount.mkdir()
    for key, text in bundle.config_map["data"].items():
        (mount / key).write_text(text)
    served_at = endpoint.url + "/v1"   # the stand-in for the pool's Service
    (mount / "plait.yaml").write_text(yaml.safe_dump({"endpoints": {"llama-3.1-70b": served_at}}))
    tool = next(p.id for p in bundle.spec.pools if p.kind == "tool")
    llm = next(p.id for p in bundle.spec.pools if p.kind == "llm")
    base = {"PLAIT_AGENT_DIR": str(mount), "PLAIT_BIND": "127.0.0.1"}
    before = metric(endpoint.url, "plait_requests_total", **COMPLETIONS)
    router = launch_entrypoint({**base, "PLAIT_ROLE": "router", "PLAIT_CONTROL_PORTS": "0,0,0", "PLAIT_ROUTER_PORT": "0",
                     "PLAIT_API_KEY": KEY, "PLAIT_RUN_DIR": str(tmp_path / "router")}, tmp_path)
    pod = None
    try:
        measured = router.wait_line(f"pool {llm} is served by {served_at}: measured overhead")
        assert "waiting for 1 worker(s) to attach" in router.wait_line("waiting for")   # the tool pod, not the vLLM pool
        ports = router.wait_line("PLAIT_CONTROL_PORTS=").rsplit("=", 1)[1]
        pod = launch_entrypoint({**base, "PLAIT_ROLE": "worker", "PLAIT_POOL_ID": tool, "PLAIT_REPLICA": "0", "PLAIT_ADDRESS": "127.0.0.1",
                      "PLAIT_ROUTER_HOST": "127.0.0.1", "PLAIT_CONTROL_PORTS": ports, "PLAIT_HEALTH_PORT": "0",
                      "PLAIT_RUN_DIR": str(tmp_path / "pod")}, tmp_path)
        url = router.wait_line("listening on ").split()[-1]
        after_measuring = metric(endpoint.url, "plait_requests_total", **COMPLETIONS)
        assert after_measuring > before, measured   # the measurement's own requests
        status, _, out = call(url, "/v1/agents/ask/invoke", {"inputs": {"text": " hi "}, "timeout_s": 60})
        assert status == 200 and out["output"], out
        assert metric(endpoint.url, "plait_requests_total", **COMPLETIONS) == after_measuring + 1
        _, _, health = call(url, "/healthz")
        workers = {w["pool"]: w for w in health["workers"].values()}
        assert workers[tool]["pid"] == pod.proc.pid   # the pod's own process
        assert workers[llm]["remote"] == served_at and workers[llm]["pid"] not in (pod.proc.pid, router.proc.pid)
    finally:
        for each in (router, pod):
            if each is not None and each.proc.poll() is None:
                each.proc.terminate()
                try:
                    each.proc.wait(30)
                except subprocess.TimeoutExpired:
                    each.stop()
