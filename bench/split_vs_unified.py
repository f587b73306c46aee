"""Prefill on one pool and decode on another (the KV cache handed over) against both in one unified pool, side by
side in one run at three request rates, beside what the planner predicts for each (issue 16, section 2).

    .venv/bin/python bench/split_vs_unified.py [--rates 2,4,8] [--requests 24] [--max-tokens 32] [--prompt-words 300]

tests/agents/handoff.py (two llama-3.1-8b calls per request) is planned for its fleet
(tests/agents/handoff.inventory.yaml) twice: with its SLA (15 s p95, 15 ms TPOT at 10 req/s) the planner splits
prefill from decode; with 30 s p95 and no TPOT target it keeps one unified pool. Both plans run here as `plait run
--plan DIR --remap-cpu` runs them: CPU worker processes, the model at @tiny with random weights, --follow-figures
with --max-tokens (ignore-EOS: every call makes exactly max-tokens tokens). The split plan runs a prefill and a
decode worker (a core each on 2 cores); the unified plan runs once as one worker on both cores (x1) and once as two
replicas on a core each (x2: the split run's processes and cores). Measured per LLM call: TTFT (from the
call's arrival at the worker running its prefill to the first token there; the hand-off comes after), the KV
hand-off (export, Gloo transfer; split only), TPOT (decode worker: from the import), and per request end-to-end
p50/p95 and the throughput achieved. Predicted: the planner's analytic figures for the same two plans on their
planned fleet at the planned 10 req/s (H100s and L40Ss, an 8B model, not this machine): compare the split/unified ratios.
Prints a table and writes bench/results/split_vs_unified.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TARGET = f"{ROOT}/tests/agents/handoff.py:draft_and_check"
INVENTORY = ROOT / "tests/agents/handoff.inventory.yaml"
# (name, plan, replicas per pool at most): on 2 cores the split plan runs 2 workers (a prefill and a decode
# replica, a core each); the unified plan runs 1 worker on both cores, or 2 replicas on a core each (same
# processes and cores as split).
CONFIGS = (("unified x1", "unified", 1), ("unified x2", "unified", 2), ("split", "split", 1))
WORDS = ("plait plans agent workflows onto pools of devices and runs them on this machine with workers that "
         "move tensors between them").split()


def plan(kind: str, out: Path) -> Any:
    """The planner's plan for `kind`, written as `plait plan --out` writes it (plan.json, placed.mlir)."""
    from plait.cli._agent import traced
    from plait.planner.catalog import load_catalog
    from plait.planner.inventory import load_inventory
    from plait.planner.planning import plan_agent, targets_of

    graph = traced(TARGET)
    targets = None if kind == "split" else replace(targets_of(graph), p95_s=30.0, tpot_s=None)
    result = plan_agent(graph, source=TARGET, sweep_points=0, inventory=load_inventory(INVENTORY, load_catalog()),
                        targets=targets)
    roles = sorted(p.role for p in result.plan.pools)
    if roles != (["decode", "prefill"] if kind == "split" else ["unified"]):
        raise SystemExit(f"the planner no longer makes a {kind} plan of {TARGET} (pools {roles}); re-tune its SLA")
    out.mkdir(parents=True, exist_ok=True)
    (out / "plan.json").write_text(result.plan.model_dump_json())
    (out / "placed.mlir").write_text(result.placed_text)
    return result.plan


def predicted(plan: Any) -> dict[str, Any]:
    """The planner's analytic figures: per-call TTFT (the prefill stage's queueing and compute: from the call's
    arrival at its prefill to the first token), the KV hand-off, TPOT, end to end, at the planned rate."""
    prefill = [s for s in plan.stages if s.stage.startswith("prefill:")]
    handoff = [t.seconds for t in plan.transfers if t.src_stage.startswith("prefill:")
               and t.dst_stage.startswith("decode:")]
    return {"rate_per_s": plan.qps, "ttft_p50_s": max(s.latency_p50_s for s in prefill),
            "ttft_p95_s": max(s.latency_p95_s for s in prefill), "handoff_s": max(handoff, default=0.0),
            "tpot_s": plan.tpot_s, "e2e_p50_s": plan.p50_s, "e2e_p95_s": plan.p95_s,
            "cost_per_hour": plan.cost_per_hour,
            "pools": [f"{p.role} {p.device} x{p.replicas}" for p in plan.pools if p.kind == "llm"]}


def measure(run: Any, inputs: list[dict[str, str]], rate: float, requests: int) -> dict[str, Any]:
    """`requests` requests at `rate` per second: latency percentiles and the throughput achieved."""
    from plait.scheduler.local import percentiles

    records = run.many(inputs, requests=requests, qps=rate)
    ok = [r for r in records if r.error is None]
    if not ok:
        raise SystemExit(f"every request failed at {rate} req/s: {records[0].error if records else 'none ran'}")
    span_s = (max(r.end_ns for r in ok) - min(r.start_ns for r in ok)) / 1e9

    def pcts(values: list[float]) -> dict[str, float]:
        p50, p95, _ = percentiles(values)
        return {"p50_s": p50, "p95_s": p95}

    return {"rate_per_s": rate, "requests": len(records), "failed": len(records) - len(ok),
            "ttft": pcts([t for r in ok for _, t, _, _ in r.llm]),
            "tpot": pcts([t for r in ok for _, _, t, _ in r.llm if t is not None]),
            "handoff": pcts([s for r in ok for name, s in r.steps if name.startswith("transfer ")] or [0.0]),
            "e2e": pcts([r.seconds for r in ok]), "throughput_per_s": len(ok) / span_s,
            "tokens_per_s": sum(n for r in ok for *_, n in r.llm) / span_s}


def run_kind(name: str, kind: str, replicas: int, tmp: Path, rates: list[float], args: argparse.Namespace,
             inputs: list[dict[str, str]]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    from plait.cli._agent import traced
    from plait.scheduler.driver import Figures
    from plait.scheduler.local import LocalRun, prepare

    graph = traced(TARGET)
    folder = tmp / name.replace(" ", "-")
    the_plan = plan(kind, folder)
    prepared = prepare(graph, TARGET, folder, remap_cpu=True)   # type: ignore[arg-type]
    with LocalRun(graph, prepared.programs, folder / "run", Figures(follow=True, seed=1),   # type: ignore[arg-type]
                  driver_prompts=prepared.driver_prompts, max_tokens=args.max_tokens, max_replicas=replicas) as run:
        run.many(inputs, requests=4, concurrency=2)   # warm up: torch's first calls, the Gloo pair
        rows = [measure(run, inputs, rate, args.requests) for rate in rates]
    return predicted(the_plan), rows


def _ms(x: float | None) -> str:
    return "-" if x is None else f"{x * 1e3:.1f}"


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}" if a and b else "-"


def table(pred: dict[str, dict[str, Any]], runs: dict[str, list[dict[str, Any]]]) -> str:
    lines = ["predicted by the planner (its fleet, llama-3.1-8b, at the planned rate; ms):",
             f"  {'':<9}{'pools':<44}{'rate/s':>7}{'TTFT p50':>9}{'TTFT p95':>9}{'hand-off':>9}{'TPOT':>7}"
             f"{'e2e p50':>9}{'e2e p95':>9}{'$/hour':>8}"]
    for kind in ("unified", "split"):
        p = pred[kind]
        lines.append(f"  {kind:<9}{', '.join(p['pools']):<44}{p['rate_per_s']:>7g}{_ms(p['ttft_p50_s']):>9}"
                     f"{_ms(p['ttft_p95_s']):>9}{_ms(p['handoff_s']):>9}{_ms(p['tpot_s']):>7}{_ms(p['e2e_p50_s']):>9}"
                     f"{_ms(p['e2e_p95_s']):>9}{p['cost_per_hour']:>8.2f}")
    lines += ["", "measured here (CPU workers, llama-3.1-8b@tiny; ms, throughput in requests/s); ratios split/unified "
              "beside the planner's:",
              f"  {'rate/s':>6}  {'metric':<13}{'unif x1':>9}{'unif x2':>9}{'split':>9}{'/x1':>6}{'/x2':>6}"
              f"{'predicted':>11}"]
    metrics = (("TTFT p50", "ttft", "p50_s", "ttft_p50_s"), ("TTFT p95", "ttft", "p95_s", "ttft_p95_s"),
               ("hand-off p50", "handoff", "p50_s", "handoff_s"), ("TPOT p50", "tpot", "p50_s", "tpot_s"),
               ("TPOT p95", "tpot", "p95_s", "tpot_s"), ("e2e p50", "e2e", "p50_s", "e2e_p50_s"),
               ("e2e p95", "e2e", "p95_s", "e2e_p95_s"))
    for u1, u2, s in zip(runs["unified x1"], runs["unified x2"], runs["split"], strict=True):
        rate = f"{u1['rate_per_s']:>6g}"
        for label, what, q, pkey in metrics:
            a1, a2, b = u1[what][q], u2[what][q], s[what][q]
            lines.append(f"  {rate}  {label:<13}{_ms(a1):>9}{_ms(a2):>9}{_ms(b):>9}{_ratio(b, a1):>6}"
                         f"{_ratio(b, a2):>6}{_ratio(pred['split'][pkey], pred['unified'][pkey]):>11}")
        t1, t2, ts = (r["throughput_per_s"] for r in (u1, u2, s))
        lines.append(f"  {rate}  {'throughput':<13}{t1:>9.2f}{t2:>9.2f}{ts:>9.2f}{_ratio(ts, t1):>6}{_ratio(ts, t2):>6}")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rates", default="2,4,8", help="request rates, per second, comma-separated")
    ap.add_argument("--requests", type=int, default=24, help="requests per rate")
    ap.add_argument("--max-tokens", type=int, default=32, help="tokens every LLM call makes (ignore-EOS)")
    ap.add_argument("--prompt-words", type=int, default=300, help="words in each request's prompt")
    args = ap.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    inputs = [{"q": f"Question {i}: " + " ".join(WORDS[(i + j) % len(WORDS)] for j in range(args.prompt_words))}
              for i in range(8)]
    start = time.perf_counter()
    pred: dict[str, dict[str, Any]] = {}
    runs: dict[str, list[dict[str, Any]]] = {}
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        for name, kind, replicas in CONFIGS:
            pred[kind], runs[name] = run_kind(name, kind, replicas, Path(tmp), rates, args, inputs)
    loads = (load, os.getloadavg()[0])
    print(table(pred, runs))
    failed = sum(row["failed"] for rows in runs.values() for row in rows)
    print(f"\n{failed} failed requests; {statistics.fmean(len(i['q'].split()) for i in inputs):.0f} words a prompt; "
          f"the whole run took {time.perf_counter() - start:.0f} s; load average {loads[0]:.1f} at the start, "
          f"{loads[1]:.1f} at the end, on {os.cpu_count()} cores")
    out = ROOT / "bench" / "results" / "split_vs_unified.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"args": vars(args), "load_average": loads, "predicted": pred, "measured": runs},
                              indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
