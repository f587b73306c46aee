"""`plait plan` checks its plan by simulation: analytic and simulated figures side by side (console, plan.json,
report), and a re-plan with a tightened internal target where the simulation misses one (at most five)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from plait.cli import app
from plait.cli._agent import traced
from plait.planner.catalog import load_catalog
from plait.planner.planning import PlanResult, Targets, plan_agent
from plait.planner.simcheck import check_by_simulation, simulate_plan
from plait.planner.simulate import SimResult
from plait.sdk.errors import PlaitError

RAG = "examples/rag.py:answer"
RUN = CliRunner()


def _plan(out: Path, *args: str) -> tuple[dict[str, object], str]:
    done = RUN.invoke(app, ["plan", RAG, "--out", str(out), "--sweep", "0", "--no-verify", *args],
                      env={"COLUMNS": "200"})
    assert done.exit_code == 0, done.output
    return json.loads((out / "plan.json").read_text()), done.output


def test_plan_shows_analytic_and_simulated_side_by_side(tmp_path: Path) -> None:
    plan, output = _plan(tmp_path)
    sim = plan["simulated"]
    assert isinstance(sim, dict)
    assert sim["requests"] == 2000 and sim["seed"] == 0 and sim["misses"] == [] and sim["replans"] == []
    # rag's plan: simulated p95 within 10 % of the analytic one (docs/simulate.md: 1,386 vs 1,417 ms)
    assert abs(sim["p95_s"] / plan["p95_s"] - 1) < 0.1
    assert "Analytic and simulated (2,000 requests, seed 0)" in output
    row = next(line for line in output.splitlines() if line.startswith("│ p95 "))
    assert f"{plan['p95_s'] * 1e3:.1f}" in row and f"{sim['p95_s'] * 1e3:.1f}" in row and "2000.0" in row
    assert "TTFT p95 (slowest call)" in output          # rag declares a TTFT target (600 ms)
    report = (tmp_path / "report.md").read_text()
    assert "## Analytic and simulated (2,000 requests, seed 0)" in report
    assert f"| p95 | 2000.0 | {plan['p95_s'] * 1e3:.1f} | {sim['p95_s'] * 1e3:.1f} |" in report
    assert "Analytic and simulated" in (tmp_path / "report.html").read_text()


def _swept(out: Path, *args: str) -> dict[str, object]:
    done = RUN.invoke(app, ["plan", RAG, "--out", str(out), "--sweep", "3", "--no-verify", *args],
                      env={"COLUMNS": "200"})
    assert done.exit_code == 0, done.output
    return json.loads((out / "plan.json").read_text())


def test_frontier_points_carry_their_simulated_p95(tmp_path: Path) -> None:
    plan = _swept(tmp_path)
    points = [p for p in plan["frontier"] if p["cost_per_hour"] is not None]   # type: ignore[union-attr]
    assert points and all(p["simulated_p95_s"] is not None and p["p95_s"] is not None for p in points)
    assert all(0.8 < p["simulated_p95_s"] / p["p95_s"] < 1.2 for p in points)   # each point's own plan replayed
    assert "pools" not in points[0]
    assert "simulated p95 ms" in (tmp_path / "report.md").read_text()
    quiet = _swept(tmp_path / "quiet", "--no-simulate")
    assert all(p["simulated_p95_s"] is None for p in quiet["frontier"])   # type: ignore[union-attr]


def test_a_replanned_plan_has_its_own_frontier(tmp_path: Path) -> None:
    # --ttft-ms 30 re-plans onto a dearer fleet; the frontier's point at the user's p95 (2 s) is that plan's
    # cost, not the first plan's
    plan = _swept(tmp_path, "--ttft-ms", "30")
    assert plan["simulated"]["replans"]   # type: ignore[index]
    at_sla = next(p for p in plan["frontier"] if abs(p["sla_p95_s"] - 2.0) < 1e-9)   # type: ignore[union-attr]
    assert at_sla["cost_per_hour"] == pytest.approx(plan["cost_per_hour"], rel=1e-6)


def test_no_simulate_skips_it(tmp_path: Path) -> None:
    plan, output = _plan(tmp_path, "--no-simulate")
    assert plan["simulated"] is None and "simulated" not in output
    assert "Analytic and simulated" not in (tmp_path / "report.md").read_text()


def test_a_tight_ttft_is_met_by_replanning(tmp_path: Path) -> None:
    # --ttft-ms 30 (from the request's arrival: encoder, search and prefill): the first plan meets it
    # analytically but misses it in simulation; the planner tightens its internal TTFT target and plans
    # again until the simulated TTFT meets 30 ms.
    plan, output = _plan(tmp_path, "--ttft-ms", "30")
    sim = plan["simulated"]
    assert isinstance(sim, dict)
    assert output.count("re-plan ") == len(sim["replans"]) and 1 <= len(sim["replans"]) <= 5
    assert sim["replans"][0].startswith("re-plan 1: simulation missed TTFT p95 ")
    assert sim["misses"] == [] and sim["busiest"] is None and sim["ttft_p95_s"] <= 0.030
    assert sim["replans"][-1].endswith("meets every target")
    assert plan["sla_p95_s"] == 2.0                     # the user's SLA on the plan, not the internal one


@pytest.fixture(scope="module")
def rag() -> tuple[object, PlanResult, SimResult]:
    catalog = load_catalog()
    graph = traced(RAG)
    first = plan_agent(graph, source=RAG, catalog=catalog, sweep_points=0)
    return graph, first, simulate_plan(first.plan, graph, catalog, requests=200)


def _slow(result: SimResult) -> SimResult:
    """A simulation whose p95 misses any target: the loop's input when analytic and simulated disagree."""
    return result.model_copy(update={"e2e": result.e2e.model_copy(update={"p95": 9.0})})


def test_the_loop_stops_after_five_replans_and_names_the_busiest_pool(rag: tuple[object, PlanResult, SimResult]) -> None:
    graph, first, sim = rag
    asked: list[Targets] = []

    def replan(targets: Targets) -> PlanResult:
        asked.append(targets)
        return first

    checked = check_by_simulation(graph, first, replan, lambda plan: _slow(sim), requests=200)  # type: ignore[arg-type]
    check = checked.plan.simulated
    assert check is not None and len(check.replans) == 5 == len(asked)
    assert [round(t.p95_s, 4) for t in asked] == [round(2.0 * (2.0 / 9.0) ** n, 4) for n in range(1, 6)]
    assert check.misses == ["p95 9,000.0 ms simulated > target 2,000.0 ms"]
    busiest = max(sim.pools, key=lambda p: p.utilization)
    assert check.busiest is not None and check.busiest.startswith(f"busiest pool {busiest.id}")
    assert checked.plan.sla_p95_s == 2.0


def test_the_loop_stops_when_no_plan_meets_the_tightened_target(rag: tuple[object, PlanResult, SimResult]) -> None:
    graph, first, sim = rag

    def replan(targets: Targets) -> PlanResult:
        raise PlaitError("no plan meets the SLA\nTo fix: relax it")

    checked = check_by_simulation(graph, first, replan, lambda plan: _slow(sim), requests=200)  # type: ignore[arg-type]
    check = checked.plan.simulated
    assert check is not None and len(check.replans) == 1
    assert "no plan meets the tightened targets" in check.replans[0] and check.replans[0].endswith("no plan meets the SLA")
    assert check.busiest is not None and checked.plan is not first.plan
