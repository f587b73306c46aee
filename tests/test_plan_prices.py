"""`plait plan`: each device type's $/hour and source in the report and console, --catalog, --max-device-types."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from plait.cli import app
from plait.planner.catalog import load_catalog

RUN = CliRunner()
VOICE = "examples/voice.py:assistant"   # two device types (a40, mi300x); rag plans on one MI300X and its host CPUs
RAG = "examples/rag.py:answer"


def _plan(out: Path, *args: str, agent: str = VOICE) -> tuple[dict[str, object], str]:
    done = RUN.invoke(app, ["plan", agent, "--out", str(out), "--sweep", "0", "--no-verify", "--no-simulate", *args],
                      env={"COLUMNS": "200"})
    assert done.exit_code == 0, done.output
    return json.loads((out / "plan.json").read_text()), done.output


@pytest.fixture(scope="module")
def free(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, object], str, Path]:
    out = tmp_path_factory.mktemp("free")
    plan, output = _plan(out)
    return plan, output, out


def test_report_and_console_show_each_device_types_price_and_source(
        free: tuple[dict[str, object], str, Path]) -> None:
    plan, output, out = free
    fleet = plan["fleet"]
    assert isinstance(fleet, dict) and len(fleet) >= 2
    prices = {p["device"]: p for p in plan["prices"]}                      # type: ignore[attr-defined]
    assert sorted(prices) == sorted(fleet)
    cat = load_catalog()
    for name, p in prices.items():
        assert p["usd_per_hour"] == cat.device(name).cloud_usd_per_hour.value and p["basis"] and p["source"]
    report = (out / "report.md").read_text()
    assert "## Prices (cloud basis, $ per device-hour)" in report
    assert f"| device types | {len(fleet)} (no limit; --max-device-types N caps it) |" in report
    for name in fleet:
        assert f"| {name} | {prices[name]['usd_per_hour']:,.3f} |" in report
        assert name in output.split("Prices (cloud basis")[1]
    assert f"device types: {len(fleet)} (no limit" in output


def test_max_device_types_limits_the_fleet(free: tuple[dict[str, object], str, Path], tmp_path: Path) -> None:
    plan, _, _ = free
    one, output = _plan(tmp_path, "--max-device-types", "1")
    assert len(one["fleet"]) == 1                                          # type: ignore[arg-type]
    assert one["cost_per_hour"] >= plan["cost_per_hour"]                   # type: ignore[operator]
    assert one["max_device_types"] == 1 and "(limit 1, --max-device-types)" in output


def test_host_cpus_are_no_device_type_of_their_own(tmp_path: Path) -> None:
    """rag's encoder and search ride on the host CPUs of its MI300X: one device type, so --max-device-types 1
    plans the same fleet at the same price (the limit used to count mi300x/host as a second type)."""
    free, _ = _plan(tmp_path / "free", agent=RAG)
    one, _ = _plan(tmp_path / "one", "--max-device-types", "1", agent=RAG)
    hosted = [p for p in free["pools"] if p["host_cpu"]]                    # type: ignore[attr-defined]
    assert hosted and all(p["device"] in free["fleet"] for p in hosted)    # type: ignore[operator]
    assert one["fleet"] == free["fleet"] and one["cost_per_hour"] == pytest.approx(free["cost_per_hour"])
    assert [p["device"] for p in one["prices"]] == list(free["fleet"])     # type: ignore[attr-defined,call-overload]


def test_plan_takes_a_users_price_overrides(free: tuple[dict[str, object], str, Path], tmp_path: Path) -> None:
    plan, _, _ = free
    dear = sorted(plan["fleet"])[-1]                                       # type: ignore[call-overload]
    f = tmp_path / "prices.yaml"
    f.write_text(f"devices:\n  {dear}:\n    cloud_usd_per_hour: {{value: 500, unit: USD/hour, tag: secondary, "
                 "source: my reseller's quote}\n")
    mine, _ = _plan(tmp_path / "out", "--catalog", str(f))
    assert dear not in mine["fleet"]                                       # type: ignore[operator]


def test_tco_prices_show_their_arithmetic(tmp_path: Path) -> None:
    from plait.planner.costmodel import price_per_hour

    plan, output = _plan(tmp_path, "--price", "tco")
    cat = load_catalog()
    for p in plan["prices"]:                                                # type: ignore[attr-defined]
        d = cat.device(p["device"])
        assert p["usd_per_hour"] == round(price_per_hour(d, "tco"), 4)
        assert p["basis"] == (f"capex ${d.capex_usd.value:,.0f} over 4 years at 8% + {d.tdp_w.value:g} W at "
                              "$0.4/kWh")
    assert "Prices (tco basis" in output
