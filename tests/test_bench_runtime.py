"""The runtime's benchmarks run at a tiny size (so they cannot rot): bench/dispatch_hop.py (10 hops, no Ray),
bench/transfer_throughput.py (two sizes) and bench/serve_load.py (a real server, a few requests a level), each
through real worker processes, writing the JSON the docs quote; and the receive buffers a worker reuses are
reused only when nobody else holds them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _bench(script: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    out = subprocess.run([sys.executable, f"bench/{script}", *args], cwd=ROOT, capture_output=True, text=True,
                         timeout=timeout)
    assert out.returncode == 0, out.stdout + out.stderr
    return out


def test_dispatch_hop_plait_rows(tmp_path: Path) -> None:
    out = _bench("dispatch_hop.py", "--hops", "10", "--requests", "3", "--warmup", "1", "--no-ray",
                 "--out", str(tmp_path / "d.json"))
    result = json.loads((tmp_path / "d.json").read_text())
    assert result["hops"] == 10 and result["ray_left_out"] == "--no-ray" and result["ray"] is None
    plait, step, floor = result["rows"]
    assert plait["name"].startswith("plait") and plait["samples"] == 3 and 0 < plait["p50_us"] <= plait["p95_us"]
    assert step["samples"] == 30 and 0 < step["p50_us"] <= step["p95_us"]
    assert floor["name"].startswith("ZeroMQ") and 0 < floor["p50_us"]
    assert plait["vs_compiled_graph_p50"] is None   # no Ray: no anchor, and the table says so
    assert "plait (driver + 2 worker processes)" in out.stdout and "Ray rows left out: --no-ray" in out.stdout


def test_transfer_throughput_two_sizes(tmp_path: Path) -> None:
    out = _bench("transfer_throughput.py", "--min-kb", "256", "--max-mb", "1", "--reps", "1",
                 "--out", str(tmp_path / "t.json"))
    result = json.loads((tmp_path / "t.json").read_text())
    assert [r["bytes"] for r in result["rows"]] == [256 << 10, 1 << 20]
    for r in result["rows"]:
        assert r["reps"] == 3 and r["plait_gb_s"] > 0 and r["raw_gb_s"] > 0
        assert r["ratio"] == pytest.approx(r["plait_gb_s"] / r["raw_gb_s"], rel=0.01)
    assert result["min_ratio_from_1mb"] == result["rows"][1]["ratio"] and "1 MB" in out.stdout


def test_receive_buffers_are_reused_only_when_nobody_holds_them() -> None:
    import torch

    from plait.scheduler.buffers import RecvBuffers

    buffers = RecvBuffers(limit_bytes=1000)
    tensor = buffers.take([10, 5], torch.float32)   # 200 bytes, new
    address = tensor.data_ptr()
    view = tensor[1]
    assert not buffers.give(tensor)   # a view shares the memory
    del view
    other = tensor
    assert not buffers.give(tensor)   # another reference
    del other
    assert buffers.give(tensor) and buffers.bytes == 200
    del tensor
    again = buffers.take([25], torch.float64)   # same bytes, another shape and dtype: the same memory
    assert again.data_ptr() == address and again.shape == (25,) and again.dtype == torch.float64
    assert buffers.bytes == 0 and buffers.take([50], torch.float32).data_ptr() != address
    for _ in range(6):   # over the limit: the oldest are dropped
        buffers.give(torch.empty(50, dtype=torch.float32))
    assert buffers.bytes == 1000


def test_serve_load_has_every_level_measured_and_simulated(tmp_path: Path) -> None:
    """bench/serve_load.py at a tiny size: a real `plait serve` of the echo agent loaded at 1x, 2x, 5x and 50x its
    planned rate (a few requests each), every level beside `plait simulate` of the same plan and arrivals; with
    one slot and no queue, the 50x burst is shed with 503 + Retry-After and counted as such."""
    import os

    out = _bench("serve_load.py", "--agents", "tests/agents/serve_echo.py:echo", "--multiples", "1", "2", "5", "50",
                 "--seconds", "2", "--max-requests", "4", "--warmup", "1", "--pause", "0", "--max-tokens", "16",
                 "--concurrency", "1", "--max-queue", "0", "--out", str(tmp_path / "out"),
                 "--config-dir", os.environ["PLAIT_CONFIG_DIR"], "--json", str(tmp_path / "s.json"),
                 timeout=300)   # about 40 s; minutes when other work crowds this machine's two cores
    result = json.loads((tmp_path / "s.json").read_text())
    (agent,) = result["agents"]
    assert agent["planned_qps"] == 1 and agent["sla_p95_s"] == 20 and agent["server_exit"] == 0
    assert "--follow-figures" in agent["serve_command"] and "--plan" in agent["serve_command"]
    levels = agent["levels"]
    assert [lv["multiple"] for lv in levels] == [1, 2, 5, 50]
    for lv in levels:
        m, s = lv["measured"], lv["simulated"]
        assert lv["qps"] == lv["multiple"] * agent["planned_qps"] and 1 <= lv["requests"] <= 4
        assert m["sent"] == s["requests"] == lv["requests"] and sum(m["kinds"].values()) == m["sent"]
        assert m["answered"] == m["kinds"]["ok"] and len(m["load_before"]) == len(m["load_after"]) == 3
        assert s["p50_s"] > 0 and s["p95_s"] >= s["p50_s"] and 0 <= s["within_sla"] <= 1
        assert "--arrivals" in s["command"] and "--policy fifo" in s["command"]
    assert levels[0]["measured"]["answered"] >= 1 and levels[0]["measured"]["p50_s"] > 0
    burst = levels[-1]["measured"]
    assert burst["kinds"]["shed_503"] >= 1 and burst["retry_after_s"] and burst["answered"] >= 1
    assert "p95 ms meas / sim" in out.stdout and "within SLA meas / sim" in out.stdout
    log = (tmp_path / "out" / "tests_agents_serve_echo.py_echo" / "serve.log").read_text()
    assert "workload: --follow-figures" in log and "1 at once, 0 waiting at most" in log and "stopped" in log
