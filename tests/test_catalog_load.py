"""Catalog loading: the built-in rows, sources and assumptions, extension from YAML, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from plait.planner.catalog import CatalogError, load_catalog
from plait.planner.costmodel import TcoParams, estimate, price_assumptions, price_per_hour
from plait.planner.stage import candidates, stage_cost
from plait.planner.workload import OpSpec

DEVICES = {"h200", "h100-sxm", "h100-pcie", "a100-80gb", "a10g", "l4", "l40s", "t4", "b200", "a40", "mi300x",
           "gaudi3", "spr-32", "genoa-64", "graviton3-64"}
MODELS = {"llama-3.2-1b", "llama-3.1-8b", "llama-3.1-70b", "qwen2.5-32b", "mistral-7b", "mixtral-8x7b", "minilm-l6",
          "bge-base", "whisper-small", "parler-tts-mini"}


def test_builtin_rows() -> None:
    cat = load_catalog()
    assert set(cat.devices) == DEVICES | {"local"}   # local: the tests' user catalog (conftest.py)
    assert set(cat.models) == MODELS
    assert cat.model("bert-base-768").name == "bge-base"
    assert cat.model("minilm-l6-384").name == "minilm-l6"
    h100 = cat.device("h100-sxm")
    assert h100.flops["bf16"].value == 989.4            # dense, not the 1979 sparsity figure
    assert cat.model("mixtral-8x7b").decoder.experts_per_token == 2  # type: ignore[union-attr]


def test_every_figure_has_a_source_or_is_an_assumption() -> None:
    cat = load_catalog()
    n_assumed = 0
    for dev in cat.devices.values():
        for fig in dev.figures().values():
            assert fig.source or fig.is_assumption
            n_assumed += fig.is_assumption
    assert n_assumed >= 10
    # a report that uses an unsourced figure lists it
    c = estimate(OpSpec(op="decode", model="llama-3.2-1b", ctx=128), "a10g", 1)
    assert any("a10g flops.bf16" in a for a in c.assumptions)
    assert any("capex_usd" in a for a in price_assumptions(cat.device("h100-pcie"), "tco"))


def test_tco_arithmetic() -> None:
    h100 = load_catalog().device("h100-sxm")
    # capital recovery factor at 8% over 4 years: 0.08 / (1 - 1.08**-4) = 0.3019208
    crf = 0.08 / (1 - 1.08 ** -4)
    assert crf == pytest.approx(0.3019208, rel=1e-6)
    # $30,000 * 0.3019208 / 8760 h = $1.03397/h, plus 0.7 kW * $0.40/kWh = $0.28/h
    assert price_per_hour(h100, "tco") == pytest.approx(30000 * crf / 8760 + 0.7 * 0.40) == pytest.approx(1.31397,
                                                                                                           rel=1e-4)
    assert price_per_hour(h100, "tco", TcoParams(usd_per_kwh=0.10)) == pytest.approx(30000 * crf / 8760 + 0.07)
    assert price_per_hour(h100, "cloud") == 4.29   # median of runpod, lambda, coreweave (prices.py's basis)


def test_stage_api_for_the_solver() -> None:
    op = OpSpec(op="prefill", model="llama-3.1-8b", tokens=2048)
    s = stage_cost(op, "h200", batch=4, mode="graph", basis="tco")
    assert s.devices_per_replica == 1 and s.fits
    assert s.throughput_per_s == pytest.approx(4 / s.latency_s)
    assert s.kv_transfer_bytes == 4 * 2048 * 131_072
    big = candidates(OpSpec(op="decode", model="llama-3.1-70b", ctx=2048), devices=["h100-sxm"], batches=(1, 8))
    assert big and all(c.tp >= 2 and c.usd_per_hour == c.tp * 4.29 for c in big)


def test_extend_from_yaml(tmp_path: Path) -> None:
    extra = tmp_path / "mine.yaml"
    extra.write_text("""
devices:
  my-gpu:
    label: My GPU
    kind: gpu
    flops: {bf16: {value: 100, unit: TFLOP/s, tag: assumption}}
    mem_gb: {value: 32, unit: GB, tag: sourced, source: my datasheet}
    mem_bw_gbps: {value: 1000, unit: GB/s, tag: assumption}
    host_link_gbps: {value: 32, unit: GB/s, tag: assumption}
    tdp_w: {value: 300, unit: W, tag: assumption}
    capex_usd: {value: 5000, unit: USD, tag: assumption}
    cloud_usd_per_hour: {value: 1.0, unit: USD/hour, tag: assumption}
""")
    cat = load_catalog(extra=extra)
    assert "my-gpu" in cat.devices and "h200" in cat.devices
    c = estimate(OpSpec(op="decode", model="llama-3.2-1b", ctx=128), "my-gpu", 1, catalog=cat)
    assert c.fits and any("my-gpu flops.bf16" in a for a in c.assumptions)


def test_a_price_override_keeps_the_other_figures(tmp_path: Path) -> None:
    from plait.planner.catalog.prices import device_price

    f = tmp_path / "prices.yaml"
    f.write_text("devices:\n  mi300x:\n    cloud_usd_per_hour: {value: 3.49, unit: USD/hour, tag: secondary, "
                 "source: my reseller}\n")
    cat, base = load_catalog(extra=f), load_catalog()
    mine = cat.device("mi300x")
    assert mine.cloud_usd_per_hour.value == 3.49 and mine.mem_bw_gbps == base.device("mi300x").mem_bw_gbps
    assert mine.cloud_quotes == {} and base.device("mi300x").cloud_quotes      # the built-in basis no longer applies
    assert device_price(mine).basis == "as given: my reseller"


def test_bad_yaml_names_the_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("devices:\n  x: [unclosed\n")
    with pytest.raises(CatalogError, match=r"bad\.yaml is not valid YAML: line \d+"):
        load_catalog(extra=bad)


def test_unknown_field_names_the_file_and_key(tmp_path: Path) -> None:
    bad = tmp_path / "typo.yaml"
    bad.write_text("models:\n  tiny:\n    source: {title: t, url: u}\n    decoder: {layers: 2, d_model: 64, heads: 4, "
                   "ffn: 128, vocab: 100, expertz: 4}\n")
    with pytest.raises(CatalogError, match=r"typo\.yaml: models\.tiny\.decoder\.expertz: .*Did you mean: experts"):
        load_catalog(extra=bad)


def test_unknown_names_suggest() -> None:
    cat = load_catalog()
    with pytest.raises(CatalogError, match="Did you mean: h200"):
        cat.device("h20")
    with pytest.raises(CatalogError, match="Did you mean: llama-3.1-8b"):
        cat.model("llama-3.1-8")
    with pytest.raises(CatalogError, match="has no decoder"):
        estimate(OpSpec(op="decode", model="minilm-l6", ctx=1), "h200")
