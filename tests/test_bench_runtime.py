"""The runtime's overhead benchmarks run at a tiny size (so they cannot rot): bench/dispatch_hop.py (10 hops,
no Ray) and bench/transfer_throughput.py (two sizes), each through real worker processes, writing the JSON
the docs quote; and the receive buffers a worker reuses are reused only when nobody else holds them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _bench(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    out = subprocess.run([sys.executable, f"bench/{script}", *args], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
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
