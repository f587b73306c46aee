"""Tools in whole cores: workers pack by cores on CPU servers, and use the host CPUs of GPU servers the fleet
already rents (real cost model and HiGHS)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from plait.planner.catalog import load_catalog
from plait.planner.inventory import Inventory
from plait.planner.plan import Plan
from plait.planner.planning import plan_agent
from plait.planner.runtime import server
from plait.sdk import trace
from plait.sdk.loader import load_agent


def plan(tmp_path: Path, tool: str, body: str, inventory: Inventory | None = None) -> Plan:
    """Plan `run` in a file with one tool `work` (decorator arguments `tool`) and `body`."""
    path = tmp_path / "agent.py"
    path.write_text(f"import plait\n\n@plait.tool({tool})\ndef work(x: str) -> str:\n    return x\n"
                    + textwrap.dedent(body))
    return plan_agent(trace(load_agent(f"{path}:run")), source="agent", sweep_points=0, inventory=inventory).plan


def test_forty_core_workers_do_not_share_a_64_core_server(tmp_path: Path) -> None:
    """Three workers of 40 cores are 0.625 of a server each: summed they 'fit' on two, but no two of them fit
    on one server, so the fleet has one server per worker."""
    result = plan(tmp_path, "latency_ms=1000, cpu=40", '''
        @plait.agent(sla=plait.SLA(p95_ms=10000), qps=2.2)
        def run(q: str) -> str:
            return work(q)
    ''', Inventory(devices={"genoa-64": 16}))
    (pool,) = result.pools
    assert pool.kind == "tool" and pool.cpu_cores == 40 and pool.replicas >= 3
    assert result.fleet == {"genoa-64": pool.replicas}


def test_a_one_core_tool_runs_on_the_host_cpus_of_the_gpu_servers(tmp_path: Path) -> None:
    """An LLM agent with a one-core tool rents no CPU server: the worker takes a core of the GPU's host."""
    result = plan(tmp_path, "latency_ms=50, cpu=1", '''
        @plait.agent(sla=plait.SLA(p95_ms=5000), qps=2)
        def run(q: str) -> str:
            return plait.llm("llama-3.1-8b", prompt=work(q), max_tokens=200, prompt_tokens=300, output_tokens=100)
    ''')
    catalog = load_catalog()
    assert all(catalog.device(d).kind == "gpu" for d in result.fleet)
    (tool,) = [p for p in result.pools if p.kind == "tool"]
    assert tool.host_cpu and tool.cpu_cores == 1 and tool.device in result.fleet
    assert tool.replicas * tool.cpu_cores <= result.fleet[tool.device] * server(tool.device).host_cores


def test_a_tool_only_agent_rents_cpu_servers_not_a_gpus_host_cores(tmp_path: Path) -> None:
    """No stage may run on a GPU, so no GPU server is in the fleet to lend host cores: the fleet names
    real hardware (it read 'a100-80gb/host', and `plait plan` then failed on that unknown device)."""
    result = plan(tmp_path, "latency_ms=20, cpu=1", '''
        @plait.agent(sla=plait.SLA(p95_ms=500), qps=6)
        def run(q: str) -> str:
            return work(work(q))
    ''')
    catalog = load_catalog()
    assert result.fleet and all(catalog.device(d).kind == "cpu" for d in result.fleet), result.fleet
    assert all(not p.host_cpu for p in result.pools)


@pytest.mark.parametrize("runnable_only", [False, True])
def test_runnable_only_keeps_to_devices_plaits_engine_runs_on(tmp_path: Path, runnable_only: bool) -> None:
    """Gaudi 3 runs only through another engine (remote): cheapest here, and avoided with --runnable-only. Each
    pool names its runtime, and the report says why the LLM pool is unified or split."""
    path = tmp_path / "agent.py"
    path.write_text(textwrap.dedent('''
        import plait

        @plait.agent(sla=plait.SLA(p95_ms=5000), qps=3)
        def run(q: str) -> str:
            return plait.llm("llama-3.1-8b", prompt=q, max_tokens=300, prompt_tokens=800, output_tokens=200)
    '''))
    result = plan_agent(trace(load_agent(f"{path}:run")), source="agent", sweep_points=0, runnable_only=runnable_only,
                        inventory=Inventory(devices={"gaudi3": 8, "h100-sxm": 8})).plan
    runtimes = {p.device: p.runtime for p in result.pools}
    assert runtimes == ({"h100-sxm": "cuda"} if runnable_only else {"gaudi3": "remote"})
    assert result.decisions and "cheaper than the cheapest split plan" in result.decisions[0]
