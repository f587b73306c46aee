"""The report says what the plan does: transfers that move data, tool shares in cores, the frontier's price basis,
other rows that are real pinned solves, every target with its prediction, the project's own files in the
assumptions, and infeasible inventories that say why each owned type is ruled out."""

from __future__ import annotations

import re
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from plait.cli import app
from plait.ir.pipeline import compile_graph
from plait.planner.catalog import load_catalog
from plait.planner.factors import builtin_factors
from plait.planner.grouping import extract_stages
from plait.planner.placement import solve
from plait.planner.plan import Plan
from plait.planner.planning import build_problem, targets_of
from plait.sdk import trace
from plait.sdk.loader import load_agent

runner = CliRunner()


@pytest.fixture(scope="module")
def react_report(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("react")
    done = runner.invoke(app, ["plan", "examples/react.py:solve", "--out", str(out), "--sweep", "3",
                               "--no-simulate", "--price", "tco"])
    assert done.exit_code == 0, done.output
    return (out / "report.md").read_text() + (out / "report.html").read_text()


def _section(report: str, title: str) -> str:
    return report.split(f"## {title}", 1)[1].split("\n## ", 1)[0]


def test_ordering_only_edges_are_not_listed_as_transfers(react_report: str) -> None:
    """A branch's arms run in turn (search before calculator): an ordering edge with no bytes, not a transfer."""
    transfers = _section(react_report, "Transfers between pools")
    assert "tool:search@react.py:118 -> tool:calculator@react.py:118" not in transfers
    assert "tool:calculator@react.py:118 -> tool:finish@react.py:118" not in transfers
    assert "decode:llama-3.1-8b@react.py:115 -> tool:observe@react.py:120" in transfers  # data still listed


def test_a_tool_stage_reads_in_cores(react_report: str) -> None:
    stages = _section(react_report, "Stages")
    row = next(line for line in stages.splitlines() if line.startswith("| tool:is_done@react.py:123"))
    assert "| 1 core |" in row and "0.125" not in row


def test_the_frontier_names_its_price_basis(react_report: str) -> None:
    assert "## TCO versus SLA (TCO: capex over 4 years + power)" in react_report
    assert "| SLA p95 ms | $/hour (tco) |" in react_report
    html_section = react_report.split("TCO versus SLA (TCO: capex over 4 years + power)</h2>", 1)[1]
    assert "data:image/png;base64" in html_section.split("<h2", 1)[0]  # the figure still follows its table


# ---------------------------------------------------------------- the plan table, the targets, the errors

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def rag(tmp_path_factory: pytest.TempPathFactory) -> tuple[Plan, str, str]:
    """rag planned with every kind of target set, simulated: (plan.json, console output, report.md)."""
    out = tmp_path_factory.mktemp("rag")
    done = runner.invoke(app, ["plan", "examples/rag.py:answer", "--out", str(out), "--sweep", "0",
                               "--sla-p50-ms", "1500", "--tpot-ms", "30"])
    assert done.exit_code == 0, done.output
    return Plan.model_validate_json((out / "plan.json").read_text()), done.output, (out / "report.md").read_text()


def test_other_rows_are_the_plan_solved_again_with_the_stage_pinned(rag: tuple[Plan, str, str]) -> None:
    """Each other row is a whole plan with its stage on that type: never cheaper than the chosen plan, never
    dearer than the one-type baseline (which is such a plan too), and what a solve pinned by hand finds."""
    plan, _, _ = rag
    others = [c for c in plan.candidates if not c.chosen]
    assert others and all(c.plan_cost_per_hour is not None for c in others)
    baseline = {b.device: b.cost_per_hour for b in plan.baselines if b.feasible}
    llm_rows = 0
    for c in others:
        assert c.plan_cost_per_hour is not None and c.plan_cost_per_hour >= plan.cost_per_hour - 1e-9
        if c.stage.startswith(("prefill:", "decode:")) and c.device in baseline:   # no host CPUs: covered
            assert c.plan_cost_per_hour <= baseline[c.device] + 1e-9, c
            llm_rows += 1
    assert llm_rows >= 2

    graph = trace(load_agent("examples/rag.py:answer"))
    catalog = load_catalog()
    targets = replace(targets_of(graph), p50_s=1.5, tpot_s=0.030)
    problem = build_problem(extract_stages(compile_graph(graph, "ops"), catalog, graph.name), targets,
                            basis="cloud", catalog=catalog).placement
    row = next(c for c in others if c.stage.startswith("prefill:"))
    stages = [s.model_copy(update={"candidates": [k for k in s.candidates if k.device == row.device]})
              if s.name == row.stage else s for s in problem.stages]
    pools = [p for p in problem.pools if p.device == row.device or all(m.stage != row.stage for m in p.members)]
    by_hand = solve(problem.model_copy(update={"stages": stages, "pools": pools}))
    assert by_hand.choice(row.stage).device == row.device
    assert row.plan_cost_per_hour == pytest.approx(by_hand.cost_per_hour)


def test_host_cores_rent_their_servers_device() -> None:
    """The encoder pinned to the host CPUs of A40 servers needs an A40 (no other stage is there): the plan
    rents it and bills it, as the MILP's objective does."""
    graph = trace(load_agent("examples/rag.py:answer"))
    catalog = load_catalog()
    problem = build_problem(extract_stages(compile_graph(graph, "ops"), catalog, graph.name), targets_of(graph),
                            basis="cloud", catalog=catalog).placement
    encode = problem.stages[0]
    assert encode.name.startswith("encode:") and "a40/host" in {c.device for c in encode.candidates}
    stages = [encode.model_copy(update={"candidates": [c for c in encode.candidates if c.device == "a40/host"]}),
              *problem.stages[1:]]
    placed = solve(problem.model_copy(update={"stages": stages}))
    assert placed.choice(encode.name).device == "a40/host"
    assert placed.devices.get("a40", 0) >= 1
    assert placed.stats is not None and placed.cost_per_hour == pytest.approx(placed.stats.objective)


def test_the_console_table_shows_pools_their_roles_and_each_pools_cost_once(rag: tuple[Plan, str, str]) -> None:
    plan, output, _ = rag
    header = next(line for line in output.splitlines() if "stage" in line and "pool" in line)
    for column in ("pool", "role", "TP", "per replica", "pool $/h", "plan $/h"):
        assert column in header
    unified = next(p for p in plan.pools if p.role == "unified")
    rows = [line for line in output.splitlines() if unified.id in line]
    assert len(rows) == 2 and "unified" in rows[0] and f"{unified.replicas}" in rows[0]
    assert "same pool" in rows[1]                      # the decode row of the prefill's pool: no second bill
    table = output.split("┏", 1)[1].split("└", 1)[0]
    assert "0.00" not in table                         # host CPUs and shared pools never read as free devices
    assert "host CPUs" in table


def test_the_summary_lists_every_target_with_its_prediction(rag: tuple[Plan, str, str]) -> None:
    plan, output, report = rag
    assert plan.sla_tpot_s == pytest.approx(0.030) and plan.tpot_s is not None and plan.tpot_s <= 0.030
    assert plan.ttft_p95_s is not None and plan.sla_ttft_s == pytest.approx(0.6)   # the decorator's TTFT
    summary = _section(report, "Summary")
    for what, predicted, target in (("p50", plan.p50_s, 1500), ("p95", plan.p95_s, 2000),
                                    ("TTFT p95 (slowest call)", plan.ttft_p95_s, 600),
                                    ("TPOT (slowest call)", plan.tpot_s, 30)):
        assert f"| {what} | {predicted * 1e3:.1f} ms predicted, target {target:.1f} ms |" in summary
    assert f"TPOT {plan.tpot_s * 1e3:,.1f} ms (target 30)" in " ".join(output.split())
    sim = _section(report, "Analytic and simulated (2,000 requests, seed 0)")
    tpot = next(line for line in sim.splitlines() if line.startswith("| TPOT"))
    assert f"| 30.0 | {plan.tpot_s * 1e3:.1f} |" in tpot     # the analytic TPOT beside the simulated one


def test_the_assumptions_cite_the_projects_own_files(react_report: str) -> None:
    assumptions = react_report.split("## Assumptions", 1)[1].split("<", 1)[0]
    assert "planner/catalog/factors.yaml" in assumptions
    assert "planner/data/calibration/h200-torch-eager.jsonl" in assumptions
    assert "this machine" not in assumptions and "../" not in assumptions
    assert not re.search(r"(?<![\w.])/(work|home|tmp|Users|root)/", assumptions)
    cited = set(re.findall(r"\bplanner/[\w./-]+\.(?:yaml|jsonl|csv|py)\b", assumptions))
    assert cited and all((ROOT / path).is_file() for path in cited), cited
    for kind in ("gpu", "cpu"):   # both fits name the file they were fitted on
        source = builtin_factors().for_kind(kind).fitted_on.split(":", 1)[0]
        assert (ROOT / source).is_file(), source


def _plan_error(tmp_path: Path, agent: str, inventory: str, *args: str) -> str:
    (tmp_path / "fleet.yaml").write_text(inventory)
    done = runner.invoke(app, ["plan", agent, "--out", str(tmp_path / "out"), "--no-simulate", "--sweep", "0",
                               "--inventory", str(tmp_path / "fleet.yaml"), *args])
    assert done.exit_code == 2 and "Traceback" not in done.output, done.output
    return done.output


def test_an_infeasible_inventory_says_why_each_owned_type_is_ruled_out(tmp_path: Path) -> None:
    out = _plan_error(tmp_path, "examples/refine.py:code_review", "devices:\n  l4: 4\n  l40s: 2\n")
    assert "owned device types ruled out for prefill of llama-3.1-70b" in out
    assert "l4: llama-3.1-70b needs 8 with tensor parallelism but the inventory has 4" in out
    assert "l40s: llama-3.1-70b needs 4 with tensor parallelism but the inventory has 2" in out
    assert out.index("ruled out") < out.index("To fix")
    out = _plan_error(tmp_path, "examples/refine.py:code_review",
                      "devices:\n  spr-32: 2\nnodes:\n  - device: l40s\n    count: 3\n    devices_per_node: 2\n")
    assert "l40s: llama-3.1-70b needs 4 with tensor parallelism but nodes have 2" in out
    out = _plan_error(tmp_path, "examples/react.py:solve", "devices:\n  l4: 4\n", "--tpot-ms", "5")
    assert re.search(r"l4: too slow for the time per output token target \(best [0-9.]+ ms per token\)", out)


def test_a_tool_with_no_cpu_in_the_inventory_says_to_add_one(tmp_path: Path) -> None:
    (tmp_path / "agent.py").write_text(textwrap.dedent('''
        import plait

        @plait.tool(latency_ms=50, cpu=8)
        def work(x: str) -> str:
            return x

        @plait.agent(sla=plait.SLA(p95_ms=5000), qps=1)
        def run(q: str) -> str:
            return plait.llm("llama-3.1-8b", prompt=work(q), max_tokens=200, prompt_tokens=300, output_tokens=100)
    '''))
    out = _plan_error(tmp_path, f"{tmp_path / 'agent.py'}:run", "devices:\n  l4: 4\n")
    assert out.startswith("error: tool work (agent.py:")
    assert "needs 8 CPU cores per worker" in out and "add a CPU server" in out and "host cores" in out
    assert "smaller model" not in out and "more memory" not in out
