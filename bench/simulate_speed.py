"""Simulation speed: `plait simulate` of each example's plan, 10,000 requests of the rag plan first.

Run: .venv/bin/python bench/simulate_speed.py [--requests 10000] [--agents examples/rag.py:answer ...]
Plans each agent once (sweep 0, as `plait simulate` without --plan does), then times only the simulation
(the SimPy run, the cost model lookups, the walk of each request) at the plan's rate, seed 0. Prints a
table beside the analytic p50/p95 and writes bench/results/simulate_speed.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

from plait.cli._agent import traced
from plait.planner.catalog import load_catalog
from plait.planner.planning import plan_agent
from plait.planner.simulate import SimOptions, check_plan, pools_of, simulate

HERE = Path(__file__).resolve().parent
AGENTS = ["examples/rag.py:answer", "examples/voice.py:assistant", "examples/react.py:solve",
          "examples/refine.py:code_review"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--requests", type=int, default=10_000)
    ap.add_argument("--agents", nargs="+", default=AGENTS)
    args = ap.parse_args()
    catalog = load_catalog()
    rows = []
    for target in args.agents:
        graph = traced(target)
        plan = plan_agent(graph, source=target, catalog=catalog, sweep_points=0).plan
        sites = check_plan(plan, graph, catalog)
        pools = pools_of(plan)
        t0 = time.perf_counter()
        r = simulate(graph, pools, SimOptions(requests=args.requests, qps=plan.qps, seed=0), catalog=catalog,
                     sites=sites)
        wall = time.perf_counter() - t0
        rows.append({"agent": target, "requests": args.requests, "qps": plan.qps, "simulated_s": r.simulated_s,
                     "wall_s": wall, "requests_per_wall_s": args.requests / wall,
                     "sim_p50_s": r.e2e.p50, "sim_p95_s": r.e2e.p95, "sim_p99_s": r.e2e.p99,
                     "analytic_p50_s": plan.p50_s, "analytic_p95_s": plan.p95_s,
                     "executions": sum(p.executions for p in r.pools)})
    head = ("agent", "requests", "qps", "sim s", "wall s", "req/s", "sim p50", "sim p95", "plan p50", "plan p95")
    print(" | ".join(head))
    for w in rows:
        print(f"{w['agent']} | {w['requests']:,} | {w['qps']:g} | {w['simulated_s']:,.0f} | {w['wall_s']:.2f} | "
              f"{w['requests_per_wall_s']:,.0f} | {w['sim_p50_s'] * 1e3:,.0f} ms | {w['sim_p95_s'] * 1e3:,.0f} ms | "
              f"{w['analytic_p50_s'] * 1e3:,.0f} ms | {w['analytic_p95_s'] * 1e3:,.0f} ms")
    out = HERE / "results" / "simulate_speed.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"machine": platform.processor() or platform.machine(), "python": platform.python_version(),
                               "rows": rows}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
