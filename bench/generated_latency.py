"""Analytic against simulated p95 of the generated agents of tests/test_generated_latency.py, every case (those the
test runs and those it marks out of the band or does not run): prints one row per case and writes
bench/results/generated_latency.json.

Run: .venv/bin/python bench/generated_latency.py [--requests 1500] [--cases 0,6 12,6 ...]
Each case is planned as the test plans it (sweep off), then replayed with `plait simulate`'s engine (Poisson
arrivals at the plan's rate, seed 0). The ratio is analytic / simulated; the test's band is 0.95 to 1.35.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from _latency_agents import agent_source  # noqa: E402

from plait.planner.catalog import load_catalog  # noqa: E402
from plait.planner.planning import plan_agent  # noqa: E402
from plait.planner.simcheck import simulate_plan  # noqa: E402
from plait.sdk import trace  # noqa: E402
from plait.sdk.loader import load_agent  # noqa: E402

CASES = [(0, 30), (0, 120), (0, 190), (8, 120), (4, 6), (2, 30), (7, 6), (3, 6), (13, 30), (16, 6), (0, 6), (12, 6),
         (17, 6), (6, 30), (10, 30), (9, 30)]


def measure(cases: list[tuple[int, int]], requests: int) -> list[dict[str, float]]:
    catalog = load_catalog()
    out = []
    folder = Path(tempfile.mkdtemp())
    for seed, qps in cases:
        start = time.perf_counter()
        path = folder / f"gen{seed}.py"
        path.write_text(agent_source(seed, qps))
        graph = trace(load_agent(f"{path}:main"))
        plan = plan_agent(graph, source=path.name, catalog=catalog, sweep_points=0).plan
        simulated = simulate_plan(plan, graph, catalog, requests=requests).e2e.p95
        out.append({"seed": seed, "qps": qps, "analytic_p95_s": plan.p95_s, "simulated_p95_s": simulated,
                    "bound_p95_s": plan.p95_bound_s, "ratio": plan.p95_s / simulated,
                    "cost_per_hour": plan.cost_per_hour, "seconds": time.perf_counter() - start})
        r = out[-1]
        print(f"| ({seed}, {qps}) | {plan.p95_s * 1e3:,.0f} ms | {simulated * 1e3:,.0f} ms | {r['ratio']:.3f} | "
              f"{'yes' if 0.95 <= r['ratio'] <= 1.35 else 'no'} |", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--requests", type=int, default=1500)
    ap.add_argument("--cases", nargs="*", default=None, help="seed,qps pairs (default: all 16)")
    args = ap.parse_args()
    cases = [tuple(int(x) for x in c.split(",")) for c in args.cases] if args.cases else CASES
    print("| case | analytic p95 | simulated p95 | ratio | in band |\n|---|---:|---:|---:|---|")
    rows = measure([(s, q) for s, q in cases], args.requests)
    target = HERE / "results" / "generated_latency.json"
    target.write_text(json.dumps({"requests": args.requests, "cases": rows}, indent=1) + "\n")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
