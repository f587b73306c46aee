"""End to end on a generated 1,000-op agent: trace, lower, group, cost every candidate, solve.

    .venv/bin/python bench/plan_e2e.py [--chains 10] [--blocks 9] [--repeat 3]

bench/plan_speed.py times the MILP alone on synthetic numbers; this times what `plait plan` does
before and around it, on a real agent written with the SDK: `chains` parallel chains of `blocks`
RAG-and-tool blocks each (embed, retrieve, prompt, LLM, a tool), fanned in to a last LLM call.
Each block lowers to 11 op-level ops, so the default is about 1,000 ops. Prints a table per phase
and writes bench/results/plan_e2e.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

MODELS = ("llama-3.2-1b", "llama-3.1-8b", "mistral-7b", "qwen2.5-32b")

HEADER = '''import plait


@plait.tool(latency_ms=plait.Dist.normal(40, 10), cpu=0.5, output_tokens=80)
def summarize(text: str) -> str:
    return text[:400]


'''


def agent_source(chains: int, blocks: int) -> str:
    """Python source of an agent with `chains` parallel chains of `blocks` blocks, fanned in at the end."""
    lines = [HEADER, "@plait.agent(sla=plait.SLA(p95_ms=SLA_MS), qps=2)", "def big(question: str) -> str:"]
    for c in range(chains):
        lines.append(f"    note_{c} = question")
        for b in range(blocks):
            model = MODELS[(c + b) % len(MODELS)]
            lines += [
                f"    docs = plait.retrieve(index='kb{c}', query=plait.embed(note_{c}, model='minilm-l6'), k=4, doc_tokens=120)",
                f"    answer = plait.llm('{model}', prompt=plait.prompt('Q: {{q}} D: {{d}}', q=note_{c}, d=docs), "
                f"max_tokens=128, prompt_tokens={300 + 40 * b}, output_tokens=plait.Dist.normal(60, 15))",
                f"    note_{c} = summarize(answer)",
            ]
    parts = ", ".join(f"note_{c}" for c in range(chains))
    lines.append(f"    return plait.llm('llama-3.1-8b', prompt=plait.prompt('{{x}}', x=plait.gather({parts})), "
                 "max_tokens=256, prompt_tokens=1200, output_tokens=200)")
    return "\n".join(lines) + "\n"


def run_once(path: Path, time_limit_s: float) -> dict[str, float | int | str]:
    from plait.ir.pipeline import compile_graph
    from plait.planner import planning
    from plait.planner.catalog import load_catalog
    from plait.planner.grouping import extract_stages
    from plait.planner.placement import SolveOptions, solve
    from plait.planner.planning import Targets, build_problem
    from plait.sdk import trace
    from plait.sdk.loader import load_agent

    planning._MEMO.clear()     # every run costs its candidates from cold, as one `plait plan` does
    clock: dict[str, float] = {}
    t = time.perf_counter()
    graph = trace(load_agent(f"{path}:big"))
    clock["trace_s"] = time.perf_counter() - t
    t = time.perf_counter()
    module = compile_graph(graph, "ops")
    clock["lower_s"] = time.perf_counter() - t
    ops = sum(1 for op in module.walk() if op.name.startswith(("op.", "agent.")))
    t = time.perf_counter()
    catalog = load_catalog()
    stages = extract_stages(module, catalog, "big")
    clock["group_s"] = time.perf_counter() - t
    t = time.perf_counter()
    assert graph.sla is not None and graph.sla.p95_ms is not None
    problem = build_problem(stages, Targets(qps=graph.qps or 1.0, p95_s=graph.sla.p95_ms / 1e3),
                            basis="cloud", catalog=catalog)
    clock["cost_s"] = time.perf_counter() - t
    t = time.perf_counter()
    placement = solve(problem.placement, SolveOptions(time_limit_s=time_limit_s))
    clock["solve_s"] = time.perf_counter() - t
    stats = placement.stats
    assert stats is not None
    return {**clock, "total_s": sum(clock.values()), "ops": ops, "stages": len(stages.stages),
            "candidates": stats.candidates, "pairs_kept": stats.options_kept, "status": stats.status,
            "gap": stats.mip_gap, "cost_per_hour": placement.cost_per_hour, "p95_s": placement.p95_s,
            "device_types": len(catalog.devices)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chains", type=int, default=10)
    ap.add_argument("--blocks", type=int, default=9)
    ap.add_argument("--sla-ms", type=float, default=30000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--time-limit", type=float, default=10.0, help="HiGHS time limit, s (plait plan's default: 30)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big_agent.py"
        path.write_text(agent_source(args.chains, args.blocks).replace("SLA_MS", str(args.sla_ms)))
        runs = [run_once(path, args.time_limit) for _ in range(args.repeat)]
        for mod in [m for m in sys.modules if m == "big_agent"]:
            del sys.modules[mod]
    phases = ("trace_s", "lower_s", "group_s", "cost_s", "solve_s", "total_s")
    first = runs[0]
    print(f"agent: {args.chains} chains x {args.blocks} blocks = {first['ops']} ops, {first['stages']} stages, "
          f"{first['device_types']} device types, {first['candidates']} candidates, {first['pairs_kept']} pairs kept")
    print(f"{'phase':<10}" + "".join(f"{f'run {i + 1}':>10}" for i in range(len(runs))) + f"{'median':>10}")
    for phase in phases:
        values = [float(r[phase]) for r in runs]
        print(f"{phase[:-2]:<10}" + "".join(f"{v:>10.3f}" for v in values) + f"{statistics.median(values):>10.3f}")
    print(f"solver: {first['status']}, gap {float(first['gap']):.3%}, ${float(first['cost_per_hour']):,.2f}/hour, "
          f"p95 {float(first['p95_s']):.2f} s")
    out = Path(__file__).resolve().parent / "results" / "plan_e2e.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"args": vars(args), "runs": runs}, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
