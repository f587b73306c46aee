"""`plait simulate` end to end: a `plait plan --out` folder (or planning first), JSON and tables, arrival
files, and the errors for a missing, mismatched or stale plan and for a pool list that misses a call site."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from plait.cli import app
from plait.planner.plan import Plan

RAG = "examples/rag.py:answer"
runner = CliRunner()


def cli(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def rag_plan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("rag")
    code, output = cli("plan", RAG, "--out", str(out), "--sweep", "0", "--no-verify", "--no-simulate")
    assert code == 0, output
    return out


def _edited(rag_plan: Path, tmp_path: Path, **update: object) -> Path:
    plan = Plan.model_validate_json((rag_plan / "plan.json").read_text()).model_copy(update=update)
    (tmp_path / "plan.json").write_text(plan.model_dump_json())
    return tmp_path


def test_simulate_a_plan_folder_as_json(rag_plan: Path) -> None:
    code, output = cli("simulate", RAG, "--plan", str(rag_plan), "--requests", "300", "--json")
    assert code == 0, output
    result = json.loads(output)
    assert result["requests"] == 300 and 0 < result["e2e"]["p50"] <= result["e2e"]["p95"] <= result["e2e"]["p99"]
    assert [c["site"] for c in result["calls"]] == ["prefill:llama-3.1-8b@rag.py:20"]
    plan = Plan.model_validate_json((rag_plan / "plan.json").read_text())
    # the planner's pools, by its ids, each serving every request once (a unified pool: prefill and decode)
    assert [(p["id"], p["kind"], p["jobs"]) for p in result["pools"]] == [(p.id, p.kind, 300) for p in plan.pools]
    assert 0 <= result["within_sla"] <= 1 and result["goodput_qps"] > 0
    assert result["notes"] == []


def test_without_a_plan_it_plans_first_and_prints_tables() -> None:
    code, output = cli("simulate", RAG, "--requests", "100", "--policy", "edf", "--seed", "3")
    assert code == 0, output
    assert "end to end" in output and "TTFT llama-3.1-8b@rag.py:20" in output and "L / λW" in output


def test_arrivals_from_a_file(rag_plan: Path, tmp_path: Path) -> None:
    times = tmp_path / "arrivals.txt"
    times.write_text("# seconds\n" + "\n".join(f"{i * 0.5:g}" for i in range(40)) + "\n")
    code, output = cli("simulate", RAG, "--plan", str(rag_plan), "--arrivals", str(times), "--json")
    assert code == 0, output
    assert json.loads(output)["offered_qps"] == pytest.approx(2.0)
    times.write_text("0.1\nsoon\n")
    code, output = cli("simulate", RAG, "--plan", str(rag_plan), "--arrivals", str(times))
    assert code == 2 and f"{times}:2: an arrival time must be a number of seconds >= 0, got 'soon'" in output


def test_a_folder_without_plan_json_says_how_to_make_one(tmp_path: Path) -> None:
    code, output = cli("simulate", RAG, "--plan", str(tmp_path))
    assert code == 2
    assert output.startswith(f"error: no plan.json in {tmp_path}.\nTo fix: make one with `plait plan")


def test_a_plan_of_another_agent_or_an_older_graph_is_refused(rag_plan: Path, tmp_path: Path) -> None:
    code, output = cli("simulate", "examples/react.py:solve", "--plan", str(rag_plan))
    assert code == 2 and "the plan is for agent 'answer' (examples/rag.py:answer), not 'solve'" in output
    stale = _edited(rag_plan, tmp_path, graph_hash="0" * 64)
    code, output = cli("simulate", RAG, "--plan", str(stale))
    assert code == 2 and "the plan was made from another version of 'answer'" in output
    plan = Plan.model_validate_json((rag_plan / "plan.json").read_text())
    stages = [s.model_copy(update={"figures": {**s.figures, "prompt_tokens": 1200.0}})
              if s.stage.startswith("prefill") else s for s in plan.stages]
    code, output = cli("simulate", RAG, "--plan", str(_edited(rag_plan, tmp_path, stages=stages)))
    assert code == 2 and ("the plan is stale: the agent changed since it was planned (prefill:llama-3.1-8b@rag.py:20: "
                          "prompt_tokens planned 1200, declared now 900)") in output


def test_a_plan_from_before_the_pool_contract_is_refused(rag_plan: Path, tmp_path: Path) -> None:
    old = json.loads((rag_plan / "plan.json").read_text())
    del old["format"], old["pools"], old["graph_hash"], old["plait_version"]
    (tmp_path / "plan.json").write_text(json.dumps(old))
    code, output = cli("simulate", RAG, "--plan", str(tmp_path))
    assert code == 2 and "was made by an older plait (it has no format version)" in output


def test_pools_that_miss_a_call_site_are_refused_by_name(rag_plan: Path, tmp_path: Path) -> None:
    plan = Plan.model_validate_json((rag_plan / "plan.json").read_text())
    pools = [p for p in plan.pools if p.kind != "search"]
    code, output = cli("simulate", RAG, "--plan", str(_edited(rag_plan, tmp_path, pools=pools)))
    assert code == 2
    assert "no pool of the plan serves 'search:wiki@rag.py:19' (rag.py:19)" in output


def test_a_plan_without_pools_is_refused(rag_plan: Path, tmp_path: Path) -> None:
    code, output = cli("simulate", RAG, "--plan", str(_edited(rag_plan, tmp_path, pools=[])))
    assert code == 2 and "the plan of examples/rag.py:answer lists no pools" in output
