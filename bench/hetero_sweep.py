"""Heterogeneous fleets against single-type ones: three agents, four rates, two time-per-token caps.

    .venv/bin/python bench/hetero_sweep.py [--rates 1 4 16 32] [--tpot 40 120]

Agents (llama-3.1-8b): `chat` (300-token prompts, 150-token answers), `long_prompt` (8,000-token prompts,
300-token answers) and `mix` (a branch: 80 % chat, 20 % long prompt). Inventory: L4, A10G, A100-80GB and
H100 SXM, any number of each. For every case, `plait plan`'s choice (fleet, $/hour, unified or split), the
cheapest single-type fleet meeting the same SLA (the plan's baselines) and the saving. Prints a table and
writes bench/results/hetero_sweep.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import plait
from plait.planner.inventory import Inventory
from plait.planner.planning import plan_agent
from plait.sdk import SLA, trace

INVENTORY = {"l4": 4096, "a10g": 4096, "a100-80gb": 4096, "h100-sxm": 4096}
P95_MS = 60_000   # loose: the time-per-token cap is what binds


@plait.tool(latency_ms=1, cpu=1)
def route(q: str) -> str:
    return "chat_arm"


def chat_arm(q: str) -> str:
    return plait.llm("llama-3.1-8b", prompt=q, max_tokens=256, prompt_tokens=300, output_tokens=150)


def long_arm(q: str) -> str:
    return plait.llm("llama-3.1-8b", prompt=q, max_tokens=512, prompt_tokens=8000, output_tokens=300)


@plait.agent(qps=1)
def chat(q: str) -> str:
    return chat_arm(q)


@plait.agent(qps=1)
def long_prompt(q: str) -> str:
    return long_arm(q)


@plait.agent(qps=1)
def mix(q: str) -> str:
    return plait.branch(route(q), q, arms=[chat_arm, long_arm], p=[0.8, 0.2])


AGENTS = {"chat": chat, "long_prompt": long_prompt, "mix": mix}


def one(name: str, qps: float, tpot_ms: float) -> dict[str, object]:
    """Plan one case; the row of the table as a dict."""
    graph = trace(AGENTS[name], sla=SLA(p95_ms=P95_MS, tpot_ms=tpot_ms), qps=qps)
    t = time.perf_counter()
    plan = plan_agent(graph, source=f"bench/hetero_sweep.py:{name}", sweep_points=0,
                      inventory=Inventory(devices=INVENTORY)).plan
    feasible = [b for b in plan.baselines if b.feasible and b.cost_per_hour is not None]
    best = min(feasible, key=lambda b: b.cost_per_hour or 0.0) if feasible else None
    roles = sorted({p.role for p in plan.pools if p.kind == "llm" and p.role})
    return {"agent": name, "qps": qps, "tpot_ms": tpot_ms, "fleet": plan.fleet, "cost_per_hour": plan.cost_per_hour,
            "p95_s": plan.p95_s, "llm_pools": roles,
            "pools": [f"{p.role} {p.device} tp{p.tensor_parallel} x{p.replicas}" for p in plan.pools if p.kind == "llm"],
            "single_type": best.device if best else None,
            "single_type_cost_per_hour": best.cost_per_hour if best else None,
            "saving": 1.0 - plan.cost_per_hour / best.cost_per_hour if best and best.cost_per_hour else None,
            "decision": plan.decisions[0] if plan.decisions else "", "plan_s": time.perf_counter() - t}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rates", type=float, nargs="+", default=[1, 4, 16, 32])
    ap.add_argument("--tpot", type=float, nargs="+", default=[40, 120])
    args = ap.parse_args()
    rows = [one(name, qps, tpot) for tpot in args.tpot for name in AGENTS for qps in args.rates]
    print(f"{'agent':<12}{'TPOT':>5}{'req/s':>6}  {'fleet':<34}{'$/hour':>9}  {'LLM pools':<38}"
          f"{'single type':<12}{'$/hour':>9}{'saving':>8}")
    for r in rows:
        fleet = ", ".join(f"{n} {d}" for d, n in r["fleet"].items())  # type: ignore[attr-defined]
        single = r["single_type_cost_per_hour"]
        print(f"{r['agent']:<12}{r['tpot_ms']:>5g}{r['qps']:>6g}  {fleet:<34}{r['cost_per_hour']:>9.2f}  "
              f"{'; '.join(r['pools'])[:37]:<38}{r['single_type'] or '-':<12}"  # type: ignore[arg-type]
              f"{single if single is None else f'{single:.2f}'!s:>9}"
              f"{'-' if r['saving'] is None else format(r['saving'], '.0%'):>8}")
    out = Path(__file__).resolve().parent / "results" / "hetero_sweep.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"args": vars(args), "inventory": INVENTORY, "p95_ms": P95_MS, "rows": rows},
                              indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
