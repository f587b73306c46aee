"""Planner 4: one price basis for every device type, per-device factors with sources, and a fit without bias."""

from __future__ import annotations

import numpy as np
import pytest

from plait.planner.catalog import load_catalog
from plait.planner.catalog.prices import PROVIDER_SET, device_price, price_mismatches
from plait.planner.costmodel import estimate
from plait.planner.factors import builtin_factors, factor_origins
from plait.planner.fit import fit_gpu, median_abs, predict
from plait.planner.fitreport import BIAS_BOUND, bias_groups
from plait.planner.workload import OpSpec, op_work


def test_every_cloud_price_is_the_median_over_one_provider_set() -> None:
    cat = load_catalog()
    assert price_mismatches(cat.devices) == []
    # hyperscaler quotes are listed but left out of the basis: the H100 is no longer priced at $6.52
    h100 = cat.device("h100-sxm")
    assert {"aws", "gcp", "azure"} <= set(h100.cloud_quotes) and h100.cloud_usd_per_hour.value == 4.29
    for name, dev in cat.devices.items():
        if dev.kind == "gpu" and dev.cloud_quotes:
            used = [p for p in dev.cloud_quotes if p in PROVIDER_SET]
            assert device_price(dev).quotes == len(used), name


@pytest.mark.parametrize(("device", "flag"), [
    ("mi300x", "outside the provider set"), ("a40", "single quote"), ("l4", "outside the provider set"),
    ("gaudi3", "assumption"), ("h200", ""), ("b200", ""),
])
def test_weak_prices_are_flagged(device: str, flag: str) -> None:
    assert device_price(load_catalog().device(device)).flag == flag


def test_measured_factors_are_cited_and_used_where_carried_ones_are_not() -> None:
    cat = load_catalog()
    measured = {n: d for n, d in cat.devices.items() if d.factors and not d.inventory_only}   # not conftest's local
    assert set(measured) == {"a40", "h100-sxm"}
    for dev in measured.values():
        for fig in dev.factors.values():
            assert fig.url and fig.url.startswith("https://github.com/microsoft/vidur/") and fig.source
    a40 = cat.device("a40")
    assert factor_origins(a40)["bw_eff"] == "measured" and factor_origins(a40)["compute_eff"] == "carried"
    assert factor_origins(cat.device("h200"))["bw_eff"] == "fitted"
    op = OpSpec(op="decode", model="llama-3.1-8b", ctx=1024)
    c = estimate(op, "a40", 1, "graph")
    act = op_work(op, cat.model("llama-3.1-8b"), 1).act_traffic   # elementwise kernels: their own term
    assert c.memory_s == pytest.approx((c.bytes_moved - act) / (696e9 * 0.814))
    assert builtin_factors().for_device(cat.device("l40s")) == builtin_factors().gpu


def test_the_fit_leaves_no_signed_bias_per_regime_and_keeps_the_8b_error() -> None:
    cat = load_catalog()
    f, rows = fit_gpu(cat)                                   # the real fit on the real calibration file
    res = predict([r for r in rows if r.split in ("fit", "predict")], cat.device("h200"), f)
    groups = [g for g in bias_groups(res, cat) if g.split == "fit"]
    assert {g.regime for g in groups} == {"launch-bound", "compute-bound", "bandwidth-bound"}
    assert all(abs(g.signed_median) <= BIAS_BOUND for g in groups), groups
    graph_1b = [r.error for r in res if r.row.split == "fit" and "graph" in r.row.label]
    assert abs(float(np.median(graph_1b))) <= BIAS_BOUND       # was -23% (llama-3.2-1b decode, CUDA graphs)
    assert median_abs([r.error for r in res if r.row.split == "predict"]) <= 0.078
    # the held-out 8B prefill (compute-bound): 17-18% slow when one efficiency covered every FLOP of the 1B fit;
    # matmuls at the GEMMs' rate, attention and elementwise kernels at their own, it stays within 5%
    prefill_8b = [r.error for r in res if r.row.split == "predict" and r.row.label.startswith("prefill")
                  and r.row.op is not None and (r.row.op.tokens or 0) >= 512]
    assert len(prefill_8b) == 3 and max(abs(e) for e in prefill_8b) <= BIAS_BOUND, prefill_8b
    groups_8b = [g for g in bias_groups(res, cat) if g.split == "predict" and g.regime == "compute-bound"]
    assert groups_8b and all(abs(g.signed_median) <= BIAS_BOUND for g in groups_8b), groups_8b
