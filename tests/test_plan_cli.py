"""`plait plan` end to end: a real trace, lowering, cost model, HiGHS solve, placed IR and report."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from plait.cli import app
from plait.planner.catalog import load_catalog
from plait.planner.costmodel import price_per_hour
from plait.planner.plan import Plan

EXAMPLES = ["examples/rag.py:answer", "examples/react.py:solve", "examples/voice.py:assistant",
            "examples/refine.py:code_review"]
runner = CliRunner()


def plan_cli(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["plan", *args, "--no-simulate"])
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def rag_plan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("rag")
    code, output = plan_cli("examples/rag.py:answer", "--out", str(out), "--sweep", "5")
    assert code == 0, output
    assert "✔" in output and "$" in output
    # piped (not a terminal): rich's 80-column default cut stage names to `prefill:l…`
    assert "│ prefill:llama-3.1-8b@rag.py:20 │" in output and "…" not in output
    return out


def test_plan_writes_every_artefact(rag_plan: Path) -> None:
    for name in ("plan.json", "placed.mlir", "report.md", "report.html"):
        assert (rag_plan / name).stat().st_size > 0, name


def test_plan_meets_the_sla_and_its_totals_add_up(rag_plan: Path) -> None:
    plan = Plan.model_validate_json((rag_plan / "plan.json").read_text())
    catalog = load_catalog()
    assert plan.sla_p95_s == pytest.approx(2.0)
    assert plan.p95_s <= plan.sla_p95_s
    stage_devices = {s.device.removesuffix("/host") for s in plan.stages}   # host CPUs ride on their GPUs
    assert stage_devices == set(plan.fleet)
    bill = sum(n * price_per_hour(catalog.device(d), "cloud") for d, n in plan.fleet.items())
    assert plan.cost_per_hour == pytest.approx(bill)
    assert plan.cost_per_million_requests == pytest.approx(plan.cost_per_hour / (plan.qps * 3600) * 1e6)
    # the critical path ends at the answer's decode, and its p95 adds up to the plan's
    assert plan.critical_path[-1].stage.startswith("decode:llama-3.1-8b")
    # the critical path's stage p95s and transfers add up to the solver's bound; the plan's p95 is the estimate
    assert sum(s.p95_s + s.transfer_s for s in plan.critical_path) == pytest.approx(plan.p95_bound_s, rel=1e-6)
    assert plan.p95_s <= plan.p95_bound_s


def test_mixed_fleet_is_no_dearer_than_any_homogeneous_one(rag_plan: Path) -> None:
    plan = Plan.model_validate_json((rag_plan / "plan.json").read_text())
    feasible = [b for b in plan.baselines if b.feasible]
    assert feasible, "some single device type must meet a 2 s SLA for RAG"
    for b in feasible:
        assert b.cost_per_hour is not None and plan.cost_per_hour <= b.cost_per_hour + 1e-9, b
    # a looser SLA never costs more: the frontier is non-increasing in the target
    costs = [p.cost_per_hour for p in sorted(plan.frontier, key=lambda p: p.sla_p95_s) if p.cost_per_hour]
    assert costs == sorted(costs, reverse=True)


def test_placed_module_puts_every_op_in_a_pool_and_upstream_mlir_accepts_it(rag_plan: Path) -> None:
    from plait.ir.module import parse_module

    text = (rag_plan / "placed.mlir").read_text()
    module = parse_module(text)
    plan = Plan.model_validate_json((rag_plan / "plan.json").read_text())
    pools = {p.id for p in plan.pools} | {"driver"}
    ops = [op for func in module.ops for op in func.walk() if op is not func]
    assert ops and all(op.attributes["pool"].data in pools for op in ops)  # type: ignore[attr-defined]
    sends = [op for op in ops if op.name == "xfer.send"]
    assert len(sends) == len(plan.transfers)
    for send in sends:
        assert send.attributes["src"] != send.attributes["dst"]
    upstream = pytest.importorskip("plait.ir.upstream")
    if upstream.available():
        upstream.check_text(text)


@pytest.mark.parametrize("target", EXAMPLES)
def test_every_example_plans(target: str, tmp_path: Path) -> None:
    code, output = plan_cli(target, "--out", str(tmp_path), "--sweep", "0")
    assert code == 0, output
    plan = Plan.model_validate_json((tmp_path / "plan.json").read_text())
    assert plan.sla_p95_s is not None and plan.p95_s <= plan.sla_p95_s
    assert any(s.stage.startswith("decode:") for s in plan.stages)
    # every transfer in the placed module is one the plan costed, with its size
    import re

    costed = {(t.src_pool, t.dst_pool) for t in plan.transfers}
    sends = re.findall(r'"xfer.send"\(%[\w.]+\) \{src = "([\w-]+)", dst = "([\w-]+)", bytes = (\d+)',
                       (tmp_path / "placed.mlir").read_text())
    for src, dst, nbytes in sends:
        assert (src, dst) in costed and int(nbytes) > 0, (src, dst, nbytes)


def test_infeasible_sla_names_the_stage_and_the_gap(tmp_path: Path) -> None:
    code, output = plan_cli("examples/rag.py:answer", "--out", str(tmp_path), "--sla-p95-ms", "20")
    assert code == 2
    assert "Traceback" not in output
    assert "needs at least" in output and "SLA" in output
    assert "decode of llama-3.1-8b" in output or "prefill of llama-3.1-8b" in output


def test_inventory_limits_the_device_types(tmp_path: Path) -> None:
    inventory = tmp_path / "fleet.yaml"
    inventory.write_text("devices:\n  l40s: 8\n  a100-80gb: 4\n  spr-32: 2\n")
    code, output = plan_cli("examples/rag.py:answer", "--out", str(tmp_path / "out"), "--sweep", "0",
                            "--inventory", str(inventory))
    assert code == 0, output
    plan = Plan.model_validate_json((tmp_path / "out" / "plan.json").read_text())
    assert set(plan.fleet) <= {"l40s", "a100-80gb", "spr-32"}
    assert plan.fleet.get("l40s", 0) <= 8 and plan.fleet.get("a100-80gb", 0) <= 4


@pytest.mark.parametrize(("text", "first_line"), [
    ("devices: [l4\n", "is not valid YAML"),
    ("devices:\n  l44: 2\n", "unknown device type 'l44'. Did you mean: l4"),
    ("gpus:\n  l4: 2\n", "gpus: Extra inputs are not permitted"),
])
def test_broken_inventory_says_what_and_how_to_fix(tmp_path: Path, text: str, first_line: str) -> None:
    inventory = tmp_path / "fleet.yaml"
    inventory.write_text(text)
    code, output = plan_cli("examples/rag.py:answer", "--out", str(tmp_path / "out"), "--inventory", str(inventory))
    assert code == 2 and "Traceback" not in output
    assert first_line in output.splitlines()[0]
    assert "To fix" in output


def test_price_basis_changes_the_bill(tmp_path: Path) -> None:
    code, output = plan_cli("examples/rag.py:answer", "--out", str(tmp_path), "--sweep", "0", "--price", "tco")
    assert code == 0, output
    plan = Plan.model_validate_json((tmp_path / "plan.json").read_text())
    catalog = load_catalog()
    assert plan.price_basis == "tco"
    assert plan.cost_per_hour == pytest.approx(
        sum(n * price_per_hour(catalog.device(d), "tco") for d, n in plan.fleet.items()))


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PROBE = ('<script>window.addEventListener("load", () => { document.body.setAttribute("data-probe", '
         'JSON.stringify({images: [...document.images].map(i => [i.id, i.naturalWidth]), '
         'cost: document.getElementById("cost-per-hour").textContent, '
         'million: document.getElementById("cost-per-million").textContent})); });</script></body>')


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (scripts/setup.sh installs it)")
def test_report_opens_in_a_browser_with_every_figure(rag_plan: Path, tmp_path: Path) -> None:
    html = (rag_plan / "report.html").read_text()
    assert "http://" not in html and "https://" not in html.split("<body>")[0], "the report must be self-contained"
    probe = tmp_path / "probe.html"
    probe.write_text(html.replace("</body>", PROBE))
    assert CHROMIUM is not None
    done = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000", "--dump-dom", probe.as_uri()],
        capture_output=True, text=True, timeout=120)
    marker = 'data-probe="'
    assert marker in done.stdout, done.stderr[-2000:]
    raw = done.stdout.split(marker, 1)[1].split('"', 1)[0].replace("&quot;", '"')
    seen = json.loads(raw)
    plan = Plan.model_validate_json((rag_plan / "plan.json").read_text())
    assert {name for name, _ in seen["images"]} == {"fig-critical_path", "fig-baselines", "fig-frontier"}
    assert all(width > 0 for _, width in seen["images"]), seen["images"]
    assert float(seen["cost"]) == pytest.approx(plan.cost_per_hour, abs=0.005)
    assert float(seen["million"]) == pytest.approx(plan.cost_per_million_requests, abs=0.005)


def test_the_example_inventory_plans_within_what_it_owns(tmp_path: Path) -> None:
    from plait.planner.inventory import load_inventory

    owned = load_inventory("examples/inventory.yaml", load_catalog())
    counts = owned.counts()
    assert counts is not None and counts["h100-sxm"] == 8 and len(owned.links) == 2
    code, output = plan_cli("examples/rag.py:answer", "--out", str(tmp_path), "--sweep", "0",
                            "--inventory", "examples/inventory.yaml")
    assert code == 0, output
    plan = Plan.model_validate_json((tmp_path / "plan.json").read_text())
    for device, n in plan.fleet.items():
        assert n <= counts[device]


def test_time_per_output_token_bound_explains_itself(tmp_path: Path) -> None:
    code, output = plan_cli("examples/refine.py:code_review", "--out", str(tmp_path), "--tpot-ms", "2")
    assert code == 2 and "Traceback" not in output
    first = output.splitlines()[0]
    assert first.startswith("error: decode of ") and "ms per token on the fastest device" in first
    assert "the time per output token allows 2" in first


def test_time_per_output_token_bound_holds_in_the_plan(tmp_path: Path) -> None:
    code, output = plan_cli("examples/rag.py:answer", "--out", str(tmp_path), "--sweep", "0", "--tpot-ms", "15")
    assert code == 0, output
    plan = Plan.model_validate_json((tmp_path / "plan.json").read_text())
    decode = next(s for s in plan.stages if s.stage.startswith("decode:llama-3.1-8b"))
    assert decode.service_s / 160 <= 0.015    # 160 expected output tokens per execution


NODES = """\
devices:
  spr-32: 2
nodes:
  - device: l40s
    count: 3
    devices_per_node: {per_node}
    scaleup_gb_s: 0
"""


def test_tensor_parallel_groups_stay_inside_a_node(tmp_path: Path) -> None:
    inventory = tmp_path / "nodes.yaml"
    inventory.write_text(NODES.format(per_node=4))
    code, output = plan_cli("examples/refine.py:code_review", "--out", str(tmp_path / "ok"), "--sweep", "0",
                            "--inventory", str(inventory), "--sla-p95-ms", "300000")
    assert code == 0, output
    plan = Plan.model_validate_json((tmp_path / "ok" / "plan.json").read_text())
    decode_70b = next(s for s in plan.stages if s.stage.startswith("decode:llama-3.1-70b"))
    assert decode_70b.device == "l40s" and decode_70b.devices_per_replica == 4   # 140 GB of weights, 48 GB each
    assert plan.fleet["l40s"] <= 12

    # two L40S per node cannot hold a 70B model, and two CPU servers cannot serve it: the error says so
    inventory.write_text(NODES.format(per_node=2))
    code, output = plan_cli("examples/refine.py:code_review", "--out", str(tmp_path / "no"), "--inventory",
                            str(inventory))
    assert code == 2 and "Traceback" not in output
    assert output.startswith("error: prefill of llama-3.1-70b") and "To fix" in output


def test_a_nodes_scaleup_link_replaces_the_catalogs() -> None:
    from plait.planner.inventory import Inventory, NodeSpec

    catalog = load_catalog()
    owned = Inventory(nodes=[NodeSpec(device="h100-sxm", count=1, devices_per_node=8, scaleup_gb_s=50)])
    assert owned.counts() == {"h100-sxm": 8} and owned.max_degree("h100-sxm") == 8
    slow = owned.apply(catalog)
    assert slow.device("h100-sxm").scaleup_gbps.value == 50          # type: ignore[union-attr]
    assert catalog.device("h100-sxm").scaleup_gbps.value == 450      # type: ignore[union-attr]
    from plait.planner.costmodel import estimate
    from plait.planner.workload import OpSpec

    op = OpSpec(op="decode", model="llama-3.1-70b", ctx=2048)
    assert estimate(op, "h100-sxm", 8, "graph", 4, catalog=slow).comm_s > \
        estimate(op, "h100-sxm", 8, "graph", 4, catalog=catalog).comm_s


@pytest.mark.parametrize(("args", "first_line"), [
    (["--qps", "nan"], "must be a finite number > 0"),
    (["--sla-p95-ms", "inf"], "must be a finite number > 0"),
    (["--qps", "1e9"], "error: encoder minilm-l6 (64 tokens) needs at least"),
])
def test_impossible_rates_and_targets_are_refused_quickly(tmp_path: Path, args: list[str], first_line: str) -> None:
    code, output = plan_cli("examples/rag.py:answer", "--out", str(tmp_path), *args)
    assert code == 2 and "Traceback" not in output
    assert first_line in output


def test_an_unwritable_out_folder_is_refused_before_planning(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code, output = plan_cli("examples/rag.py:answer", "--out", str(blocker))
    assert code == 2 and "Traceback" not in output
    assert output.startswith(f"error: cannot write the plan to --out {blocker}")


def test_plan_checks_placed_mlir_with_upstream_unless_no_verify(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from plait.ir import upstream
    from plait.ir.errors import UpstreamMLIRError

    checked: list[str] = []

    def reject(text: str) -> str:
        checked.append(text)
        raise UpstreamMLIRError("upstream MLIR rejected the module:\nerror: made up for this test")

    monkeypatch.setattr(upstream, "available", lambda: True)
    monkeypatch.setattr(upstream, "check_text", reject)
    code, out = plan_cli(EXAMPLES[0], "--out", str(tmp_path / "a"), "--sweep", "0")
    assert code == 2 and len(checked) == 1 and "error: upstream MLIR rejected the module:" in out
    code, out = plan_cli(EXAMPLES[0], "--out", str(tmp_path / "b"), "--sweep", "0", "--no-verify")
    assert code == 0 and len(checked) == 1
    assert (tmp_path / "b" / "placed.mlir").read_text() == checked[0]     # upstream read placed.mlir itself
