"""bench/paper_table.py: the paper's pair ranking comes from plait's cost model, normalized to H100::H100."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from plait.planner.catalog import load_catalog
from plait.planner.costmodel import estimate
from plait.planner.factors import builtin_factors
from plait.planner.stage import stage_cost
from plait.planner.workload import OpSpec, op_work

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("paper_table", ROOT / "bench" / "paper_table.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["paper_table"] = mod
    spec.loader.exec_module(mod)
    return mod


def test_paper_ranking_is_normalized_and_from_the_cost_model(bench) -> None:
    cat = load_catalog(extra=bench.PAPER_YAML)
    assert {"paper-h100", "paper-h100-dense"} <= set(cat.devices)               # sparsity figure and dense figure
    assert cat.device("paper-h100").flops["fp16"].value == 1979
    assert cat.device("paper-h100-dense").flops["fp16"].value == pytest.approx(989.4)
    assert cat.device("paper-h100").cloud_usd_per_hour.tag == "paper"

    # FP8 variants run in the device's fp8 peak with 1-byte weights
    op8 = OpSpec(op="prefill", model="llama-3-8b-fp8", tokens=512)
    c8 = estimate(op8, "paper-b200", 4, "graph", 1, catalog=cat)
    f = builtin_factors().gpu
    w = op_work(op8, cat.model("llama-3-8b-fp8"), 4)   # matmuls at compute_eff, attention at attn_eff
    assert c8.dtype == "fp8" and f.attn_eff is not None and 0 < w.attn_flops < w.flops == c8.flops
    assert c8.compute_s == pytest.approx(((w.flops - w.attn_flops) / f.compute_eff + w.attn_flops / f.attn_eff)
                                         / 4500e12)
    assert c8.kv_transfer_bytes * 2 == estimate(OpSpec(op="prefill", model="llama-3-8b", tokens=512), "paper-b200",
                                                4, "graph", 1, catalog=cat).kv_transfer_bytes

    b = bench.Bench(cat)
    res = bench.rank_workload(b, "llama-3-8b-fp8", 512, 4096)
    ref = bench.lookup(res, "paper-h100", "paper-h100")
    assert ref["normalized"] == pytest.approx(1.0)
    assert len(res["pairs"]) == len(bench.DEVICES) ** 2
    ranked = [r["normalized"] for r in res["pairs"] if r["feasible"]]
    assert ranked == sorted(ranked, reverse=True)

    # the reference pair's figures are the cost model's: decode step and price from stage_cost
    d = ref["decode_cfg"]
    sc = stage_cost(OpSpec(op="decode", model="llama-3-8b-fp8", ctx=512 + 2048), "paper-h100", d["batch"], d["mode"],
                    d["tp"], catalog=cat)
    assert d["step_s"] == pytest.approx(sc.latency_s, rel=1e-4) and sc.latency_s <= bench.TPOT_S
    assert d["usd_per_hour"] == pytest.approx(0.60 * d["tp"])
    assert ref["ttft_s"] <= bench.TTFT_S
    assert b.calls > 0
