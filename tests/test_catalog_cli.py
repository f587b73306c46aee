"""`plait catalog devices|models`: what the planner knows, with figures and price sources; `--json` pinned."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from plait.cli import app

RUN = CliRunner()


def _json(*args: str) -> list[dict[str, object]]:
    done = RUN.invoke(app, ["catalog", *args, "--json"])
    assert done.exit_code == 0, done.output
    return json.loads(done.output)


def test_devices_json_is_pinned() -> None:
    rows = {r["device"]: r for r in _json("devices")}
    assert sorted(rows) == ["a100-80gb", "a10g", "a40", "b200", "gaudi3", "genoa-64", "graviton3-64", "h100-pcie",
                            "h100-sxm", "h200", "l4", "l40s", "local", "mi300x", "spr-32", "t4"]   # local: conftest's
    assert rows["mi300x"] == {
        "device": "mi300x", "kind": "gpu", "vendor": "amd", "label": "AMD Instinct MI300X", "dtype": "bf16",
        "tflops": 1307.4, "mem_gb": 192.0, "mem_bw_gbps": 5300.0, "usd_per_hour": 1.78,
        "price_basis": "median of tensorwave 1.71, vultr 1.85 (no provider of the set quotes it)",
        "price_flag": "outside the provider set", "price_quotes": {"tensorwave": 1.71, "vultr": 1.85},
        "tco_usd_per_hour": 0.817, "measured_factors": {}}
    assert rows["a40"]["price_flag"] == "single quote" and rows["a40"]["measured_factors"] == {"bw_eff": 0.814}
    assert rows["h100-sxm"]["usd_per_hour"] == 4.29 and rows["h100-sxm"]["price_flag"] == ""


def test_models_json_is_pinned() -> None:
    rows = _json("models")
    assert [(r["model"], r["params_b"]) for r in rows] == [
        ("bge-base", 0.109), ("llama-3.1-70b", 70.554), ("llama-3.1-8b", 8.03), ("llama-3.2-1b", 1.236),
        ("minilm-l6", 0.023), ("mistral-7b", 7.248), ("mixtral-8x7b", 46.703), ("parler-tts-mini", 0.818),
        ("qwen2.5-32b", 32.764), ("whisper-small", 0.242)]


def test_tables_show_prices_with_their_basis_and_flags() -> None:
    done = RUN.invoke(app, ["catalog", "devices"], env={"COLUMNS": "260"})
    assert done.exit_code == 0, done.output
    lines = {line.split("│")[1].strip(): line for line in done.output.splitlines() if line.startswith("│")}
    assert "4.290" in lines["h100-sxm"] and "median of 3 of 4 providers" in lines["h100-sxm"]
    assert "FLAG: single quote" in lines["a40"] and "FLAG: outside the provider set" in lines["mi300x"]
    models = RUN.invoke(app, ["catalog", "models"], env={"COLUMNS": "260"})
    assert models.exit_code == 0 and "llama-3.1-70b" in models.output


def test_a_user_catalog_overrides_a_price(tmp_path: Path) -> None:
    f = tmp_path / "mine.yaml"
    f.write_text("devices:\n  my-gpu:\n    label: Mine\n    kind: gpu\n"
                 "    flops: {bf16: {value: 100, tag: assumption}}\n    mem_gb: {value: 24, tag: assumption}\n"
                 "    mem_bw_gbps: {value: 500, tag: assumption}\n    tdp_w: {value: 300, tag: assumption}\n"
                 "    capex_usd: {value: 5000, tag: assumption}\n    cloud_usd_per_hour: {value: 0.5, tag: assumption}\n")
    rows = {r["device"]: r for r in _json("devices", "--catalog", str(f))}
    assert rows["my-gpu"]["usd_per_hour"] == 0.5 and rows["my-gpu"]["price_flag"] == "assumption"
    bad = RUN.invoke(app, ["catalog", "devices", "--catalog", str(tmp_path / "nope.yaml")])
    assert bad.exit_code == 2 and "does not exist" in bad.output and "Traceback" not in bad.output
