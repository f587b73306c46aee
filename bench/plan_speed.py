"""Placement speed: a generated 1,000-stage agent over 15 device types, planned end to end.

Run: .venv/bin/python bench/plan_speed.py [--stages 1000] [--seeds 0 1 2] [--time-limit 0.8] [--no-slices]
Prints a table and writes bench/results/plan_speed.json. Each seed runs twice: whole devices only
(slices 0, the speed target), and with embeds/searches also offered half and quarter GPU slices and
tools a quarter or an eighth of a CPU server (slices 1: sliced types get whole-device variables N_D). The time counted is `solve` (enumerate
(candidate, replicas) pairs with queueing, prune, floors, build the MILP, LP + rounding, HiGHS),
not building the input problem.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

from plait.planner.placement import SolveOptions, solve
from plait.planner.placement.generate import agent_graph

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--stages", type=int, default=1000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--time-limit", type=float, default=0.8, help="seconds for LP, rounding and MILP")
    ap.add_argument("--slack", type=float, default=0.35, help="SLA position between floor and cheapest path")
    ap.add_argument("--no-slices", action="store_true", help="skip the runs with slice candidates")
    args = ap.parse_args()
    rows = []
    for seed, slices in [(s, sl) for sl in ([False] if args.no_slices else [False, True]) for s in args.seeds]:
        t0 = time.perf_counter()
        problem = agent_graph(seed, args.stages, slack=args.slack, slices=slices)
        gen_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        placed = solve(problem, SolveOptions(time_limit_s=args.time_limit))
        wall = time.perf_counter() - t0
        st = placed.stats
        assert st is not None and placed.feasible
        rows.append({
            "seed": seed, "slices": int(slices), "stages": st.stages,
            "sliced_types": sum(1 for d in placed.devices if any(
                c.device == d and c.share < 1 for s in problem.stages for c in s.candidates)),
            "devices": sum(placed.devices.values()), "edges": len(problem.edges),
            "device_types": len({c.device for s in problem.stages for c in s.candidates}),
            "candidates": st.candidates, "pairs_enumerated": st.options_enumerated, "pairs_kept": st.options_kept,
            "variables": st.variables, "constraints": st.constraints, "status": st.status,
            "objective_per_hour": round(placed.cost_per_hour, 4), "mip_gap": st.mip_gap,
            "sla_p95_s": problem.sla.p95_s, "p95_s": placed.p95_s, "build_s": round(st.build_s, 3),
            "solve_s": round(st.solve_s, 3), "plan_s": round(wall, 3), "generate_s": round(gen_s, 3)})
    cols = [("seed", "seed"), ("slices", "slices"), ("stages", "stages"), ("candidates", "cands"), ("pairs_enumerated", "pairs"),
            ("pairs_kept", "kept"), ("variables", "vars"), ("constraints", "rows"), ("build_s", "build s"),
            ("solve_s", "solve s"), ("plan_s", "plan s"), ("objective_per_hour", "$/hour"), ("mip_gap", "gap"),
            ("status", "status")]
    fmt = {"mip_gap": lambda v: f"{v:.3%}"}
    table = [[fmt.get(k, str)(r[k]) for k, _ in cols] for r in rows]
    widths = [max(len(h), *(len(t[i]) for t in table)) for i, (_, h) in enumerate(cols)]
    print("  ".join(h.rjust(w) for (_, h), w in zip(cols, widths, strict=True)))
    for t in table:
        print("  ".join(v.rjust(w) for v, w in zip(t, widths, strict=True)))
    worst = max(r["plan_s"] for r in rows if not r["slices"])
    print(f"\nslowest plan without slices: {worst:.2f} s (target < 2 s) on "
          f"{platform.processor() or platform.machine()}")
    if any(r["slices"] for r in rows):
        print(f"slowest plan with slices: {max(r['plan_s'] for r in rows if r['slices']):.2f} s")
    out = HERE / "results" / "plan_speed.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"args": vars(args), "rows": rows, "slowest_plan_s": worst}, indent=2) + "\n")
    print(f"wrote {out.relative_to(HERE.parent)}")


if __name__ == "__main__":
    main()
