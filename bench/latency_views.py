"""Analytic versus simulated latency of each example's plan: p50, p95 and TTFT (docs/placement.md's table).

Run: .venv/bin/python bench/latency_views.py [--requests 3000] [--agents examples/rag.py:answer ...]
Plans each agent as `plait plan --no-simulate --sweep 0` does, then replays the plan with `plait simulate`'s
engine (Poisson arrivals at the plan's rate, seed 0). TTFT is the slowest LLM call's p95 time from the
request's arrival to that call's first token, in both views. Prints a markdown table and writes
bench/results/latency_views.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from plait.cli._agent import traced
from plait.planner.catalog import load_catalog
from plait.planner.planning import plan_agent, targets_of
from plait.planner.simcheck import figures, simulate_plan

HERE = Path(__file__).resolve().parent
AGENTS = ["examples/rag.py:answer", "examples/react.py:solve", "examples/voice.py:assistant",
          "examples/refine.py:code_review"]
HEAD = "| agent | p50 analytic | p50 simulated | p95 analytic | p95 simulated | TTFT analytic | TTFT simulated |"


def rows(agents: list[str], requests: int) -> list[dict[str, object]]:
    """One row per agent: the plan's analytic figures and the simulation's, in seconds."""
    catalog = load_catalog()
    out: list[dict[str, object]] = []
    for target in agents:
        graph = traced(target)
        plan = plan_agent(graph, source=target, catalog=catalog, sweep_points=0).plan
        sim = simulate_plan(plan, graph, catalog, requests=requests)
        check = figures(plan, sim, targets_of(graph), requests=requests, seed=0)
        out.append({"agent": target, "requests": requests, "cost_per_hour": plan.cost_per_hour,
                    "p50_analytic_s": plan.p50_s, "p50_simulated_s": check.p50_s,
                    "p95_analytic_s": plan.p95_s, "p95_simulated_s": check.p95_s,
                    "ttft_analytic_s": check.analytic_ttft_p95_s, "ttft_simulated_s": check.ttft_p95_s})
    return out


def table(data: list[dict[str, object]]) -> str:
    def ms(v: object) -> str:
        return "-" if v is None else f"{float(v) * 1e3:,.0f} ms"   # type: ignore[arg-type]

    lines = [HEAD, "|---|---:|---:|---:|---:|---:|---:|"]
    for r in data:
        name = str(r["agent"]).removeprefix("examples/")
        lines.append(f"| {name} | " + " | ".join(ms(r[k]) for k in (
            "p50_analytic_s", "p50_simulated_s", "p95_analytic_s", "p95_simulated_s", "ttft_analytic_s",
            "ttft_simulated_s")) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--agents", nargs="+", default=AGENTS)
    args = ap.parse_args()
    data = rows(args.agents, args.requests)
    print(table(data))
    out = HERE / "results" / "latency_views.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"command": "bench/latency_views.py", "rows": data}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
