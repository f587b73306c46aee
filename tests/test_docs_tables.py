"""docs/costmodel.md and the README show the catalog's prices, flags and measured factors, and the gap figure
the calibration data gives: a change to the catalog or the fit that leaves the docs stale fails here."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from plait.planner.calibration import host_gaps
from plait.planner.catalog import load_catalog
from plait.planner.catalog.prices import device_price

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "costmodel.md").read_text()
README = (ROOT / "README.md").read_text()


def _price_rows(text: str) -> dict[str, tuple[float, str]]:
    """`| device | $/hour | basis | flag |` rows of the docs' price table."""
    out = {}
    for m in re.finditer(r"^\| ([a-z0-9-]+) \| ([0-9.]+) \| [^|]+ \|([^|]*)\|$", text, re.M):
        out[m.group(1)] = (float(m.group(2)), m.group(3).strip())
    return out


def test_costmodel_doc_price_table_is_the_catalog() -> None:
    cat = load_catalog()
    rows = _price_rows(DOC)
    gpus = sorted(n for n, d in cat.devices.items() if d.kind == "gpu")
    assert sorted(rows) == gpus
    for name, (usd, flag) in rows.items():
        p = device_price(cat.device(name))
        assert (usd, flag) == (p.usd_per_hour, p.flag), name


def test_readme_price_table_and_measured_factors_are_the_catalog() -> None:
    cat = load_catalog()
    for name in ("b200", "h200", "h100-sxm", "h100-pcie", "a100-80gb", "mi300x", "l40s", "a40", "gaudi3"):
        p = device_price(cat.device(name))
        assert re.search(rf"\| {name} \| {p.usd_per_hour:g}0* \| {re.escape(p.flag)}\s*\|", README), name
    for name, dev in cat.devices.items():
        if dev.inventory_only:   # `local`: the tests' user catalog (conftest.py), not a documented device
            continue
        for key, fig in dev.factors.items():
            assert f"{key} {fig.value:g}" in README and fig.url in DOC, (name, key)


def test_costmodel_doc_states_the_host_gap_of_the_calibration_data() -> None:
    gaps = [g for _, g in host_gaps()]
    assert f"median gap is {float(np.median(gaps)):+.1%}" in DOC and f"over {len(gaps)} rows" in DOC


def test_placement_doc_shows_the_latency_views_bench_table() -> None:
    import json

    doc = (ROOT / "docs" / "placement.md").read_text()
    rows = json.loads((ROOT / "bench" / "results" / "latency_views.json").read_text())["rows"]
    assert len(rows) == 4
    for r in rows:
        cells = [f"{r[k] * 1e3:,.0f} ms" for k in ("p50_analytic_s", "p50_simulated_s", "p95_analytic_s",
                                                    "p95_simulated_s", "ttft_analytic_s", "ttft_simulated_s")]
        assert f"| {r['agent'].removeprefix('examples/')} | " + " | ".join(cells) + " |" in doc, r["agent"]


def test_cluster_doc_shows_the_attached_vs_local_bench_tables() -> None:
    """docs/cluster.md's two tables of bench/attached_vs_local.py are its committed results' (both modes answered
    every request and left no process behind)."""
    import json
    import sys

    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import attached_vs_local as bench
    finally:
        sys.path.remove(str(ROOT / "bench"))
    doc = (ROOT / "docs" / "cluster.md").read_text()
    for pin, name in (("local", "attached_vs_local.json"), ("none", "attached_vs_local_pin_none.json")):
        result = json.loads((ROOT / "bench" / "results" / name).read_text())
        assert result["pin"] == pin and result["processes_left"] == []
        assert all(m["failed"] == 0 for by_mode in result["phases"].values() for m in by_mode.values())
        begin, end = bench.markers(pin)
        assert f"{begin}\n{bench.markdown(result)}\n{end}" in doc, pin
