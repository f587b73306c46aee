"""bench/predict_vs_run.py on one example at a tiny size: it plans rag for `local` (the tests' reference machine),
simulates and runs that plan with `plait run`, and writes JSON and markdown whose measured, analytic and simulated
figures are all there and positive, so the bench cannot rot."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench" / "predict_vs_run.py"


def _bench_module() -> object:
    spec = importlib.util.spec_from_file_location("predict_vs_run", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_runs_rag_and_writes_all_three_views(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text("# Title\n\nhand-written intro\n\n<!-- predict_vs_run.py: begin -->\nold\n"
                   "<!-- predict_vs_run.py: end -->\n\nhand-written causes\n")
    out = tmp_path / "results.json"
    done = subprocess.run(
        [sys.executable, str(BENCH), "--examples", "rag", "--fractions", "0.3", "--min-requests", "2",
         "--max-requests", "2", "--sim-requests", "100", "--out", str(tmp_path / "work"),
         "--config-dir", os.environ["PLAIT_CONFIG_DIR"], "--json", str(out), "--doc", str(doc)],
        cwd=ROOT, capture_output=True, text=True, timeout=170)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    data = json.loads(out.read_text())
    assert data["command"].startswith(".venv/bin/python bench/predict_vs_run.py --examples rag")
    assert len(data["load_before"].split()) == 3
    (rag,) = data["examples"]
    assert rag["example"] == "rag" and rag["scale"] == "tiny"
    cap = rag["capacity"]
    assert 0 < cap["capacity_qps"] <= cap["capacity_if_pools_had_the_machine_each_qps"]
    (rate,) = rag["rates"]
    assert rate["answered"] == "2 of 2"
    assert abs(rate["qps"] - round(0.3 * cap["capacity_qps"], 4)) < 1e-9
    assert rate["run_command"].startswith("plait run examples/rag.py:answer --inputs ")
    assert "--follow-figures" in rate["run_command"]
    rows = {r["row"]: r for r in rate["rows"]}
    e2e = rows["end to end"]
    for key in ("measured_p50_s", "measured_p95_s", "analytic_p50_s", "analytic_p95_s", "simulated_p50_s",
                "simulated_p95_s"):
        assert e2e[key] > 0, key
    assert e2e["measured_p50_s"] <= e2e["measured_p95_s"]
    ttft = rows["TTFT llm_1 llama-3.1-8b@tiny"]
    tpot = rows["TPOT llm_1 llama-3.1-8b@tiny"]
    assert ttft["n"] == 2 and ttft["analytic_p50_s"] > 0 and ttft["simulated_p95_s"] > 0
    assert tpot["measured_p50_s"] > 0 and tpot["analytic_p50_s"] > 0 and tpot["simulated_p50_s"] > 0
    embed = rows["embed minilm-l6"]
    assert embed["analytic_p50_s"] > 0 and embed["computing_ms"] > 0   # the trace split each step
    assert rate["trace"]["request_ms"] > 0
    text = doc.read_text()   # the generated part replaced, the hand-written parts kept
    assert "hand-written intro" in text and "hand-written causes" in text and "\nold\n" not in text
    assert "| rag | " in text and "plait run examples/rag.py:answer" in text


def test_capacity_adds_the_pools_that_share_the_cores() -> None:
    """Busy seconds per request: an LLM pool's stages at their service time, an encoder per item of its batch;
    the cores they share make the capacity the inverse of their sum, a waiting tool limits alone."""
    from plait.planner.plan import CallSite, Pool, StageChoice

    bench = _bench_module()

    def stage(name: str, service: float, batch: int = 1, visits: float = 1.0) -> StageChoice:
        return StageChoice(stage=name, description="", ops=[], device="local", replicas=1, devices_per_replica=1,
                           batch=batch, mode="eager", visits=visits, service_s=service, latency_p50_s=service,
                           latency_p95_s=service, utilization=0.1, cost_per_hour=0.0)

    def pool(pid: str, kind: str, *stages: str) -> Pool:
        return Pool(id=pid, kind=kind, device="local", replicas=1, runtime="cpu",  # type: ignore[arg-type]
                    call_sites=[CallSite(stage=s, loc="a.py:1", visits=1.0) for s in stages])

    plan = type("P", (), {})()
    plan.stages = [stage("encode:e@a.py:1", 0.4, batch=4), stage("prefill:m@a.py:2", 0.2),
                   stage("decode:m@a.py:2", 0.7), stage("tool:t@a.py:3", 0.3, visits=2.0)]
    plan.pools = [pool("enc", "encoder", "encode:e@a.py:1"), pool("llm", "llm", "prefill:m@a.py:2", "decode:m@a.py:2"),
                  pool("tool", "tool", "tool:t@a.py:3")]
    cap = bench.capacity(plan)  # type: ignore[attr-defined]
    assert abs(cap["busy_s_shared_cores"] - (0.1 + 0.9)) < 1e-12
    assert abs(cap["busy_s_slowest_tool"] - 0.6) < 1e-12
    assert abs(cap["capacity_qps"] - 1.0) < 1e-12   # 1 / (0.1 + 0.9): not the slowest pool's 1 / 0.9
    assert abs(cap["capacity_if_pools_had_the_machine_each_qps"] - 1 / 0.9) < 1e-12
