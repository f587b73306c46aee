"""Predicted against executed: each example planned for this machine, run by `plait run`, beside the planner's
analytic p50/p95 and `plait simulate`'s for the same plan and rate (issue 16, section 1).

Run: .venv/bin/python bench/predict_vs_run.py [--examples rag react refine voice] [--fractions 0.3 0.7]

For each example: trace it; plan it for the `local` device (`plait calibrate --cpu`'s figures, in a private
user catalog under --out), LLMs at --scale, as `plait run` without --plan does (`scheduler.local.local_plan`);
derive the plan's capacity from its pools (`capacity` below); then at each fraction of that capacity: plan
again at that rate, write plan.json and placed.mlir, replay it with `plait simulate --plan DIR --json` (the
run's arrival process: evenly spaced), and run it with `plait run --plan DIR --qps R --follow-figures
--trace FILE`. Measured rows come from the run's summary table (end to end, per step kind, TTFT and TPOT per
LLM call); the trace's spans split each step into queued and computing, and each request's time outside its
steps (the driver). Prints a table, writes bench/results/predict_vs_run.json and, with --doc, the markdown.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, NamedTuple

ROOT = Path(__file__).resolve().parent.parent
PLAIT = [sys.executable, "-m", "plait.cli"]
EXAMPLES = {"rag": "examples/rag.py:answer", "react": "examples/react.py:solve",
            "refine": "examples/refine.py:code_review", "voice": "examples/voice.py:assistant"}
# one input per request, all different: the same prompt again would be served from the prefix cache, which the
# plans of these agents do not count on
ASK = {"rag": "What do you know about this: {fact}?", "react": "Check this and answer: {fact}?",
       "refine": "Write a Python function that returns this fact as a dict of its parts: {fact}"}
# tools that stand in for a network service this machine cannot reach: their declared latency is slept
DECLARED_TOOLS = {"react": "search is a stand-in for a network search API (no network here): every tool sleeps "
                           "its declared latency (`--tool-latency declared`)",
                  "voice": "web_search is a stand-in for a network search API: `--tool-latency declared`"}
COMPUTE_POOLS = ("llm", "encoder", "search")   # these share the machine's cores; tool workers mostly wait
ROW = re.compile(r"^(.{40}) +(\d+) +([\d.]+|nan) +([\d.]+|nan) +([\d.]+|nan)$")


def plait(args: list[str], env: dict[str, str], timeout: float = 900) -> str:
    """One `plait` command as a user runs it; its stdout (an error names the command and its stderr)."""
    done = subprocess.run([*PLAIT, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"plait {shlex.join(args)} failed ({done.returncode}):\n{done.stdout[-2000:]}"
                           f"\n{done.stderr[-3000:]}")
    return done.stdout


def capacity(plan: Any) -> dict[str, float]:
    """Requests/s at which the plan's pools are busy all the time, from each stage's service time.

    Busy seconds a request costs a pool: the sum over its stages of visits x service_s (LLM stages: the engine
    runs the calls of a light load one at a time; encoders and searches: per item at the planned batch). The
    llm, encoder and search pools of a `local` plan share this machine's cores (each is costed with all of
    them), so their busy seconds add up; a tool worker mostly waits (declared latency), so it limits alone."""
    busy: dict[str, float] = {}
    kind = {p.id: p.kind for p in plan.pools}
    of_stage = {c.stage: p.id for p in plan.pools for c in p.call_sites}
    for s in plan.stages:
        pool = of_stage.get(s.stage, s.stage)
        per_item = s.service_s / (1 if kind.get(pool) == "llm" else s.batch)
        busy[pool] = busy.get(pool, 0.0) + s.visits * per_item
    shared = sum(b for p, b in busy.items() if kind.get(p) in COMPUTE_POOLS)
    alone = max((b for p, b in busy.items() if kind.get(p) not in COMPUTE_POOLS), default=0.0)
    per_pool = min(1 / b for b in busy.values() if b > 0)
    return {"capacity_qps": 1 / max(shared, alone), "busy_s_shared_cores": shared, "busy_s_slowest_tool": alone,
            "capacity_if_pools_had_the_machine_each_qps": per_pool}


def analytic_rows(plan: Any, graph: Any) -> dict[str, dict[str, float | None]]:
    """The planner's per-execution figures keyed by the run's row names (see the module docstring of the doc)."""
    locs = {f"{n.name} {n.target}": n.loc for _, n in graph.walk() if n.kind == "llm"}
    stages = {s.stage: s for s in plan.stages}
    out: dict[str, dict[str, float | None]] = {"end to end": {"p50": plan.p50_s, "p95": plan.p95_s}}
    names = {"encode": "embed", "search": "retrieve", "tool": "tool"}
    for s in plan.stages:
        op, _, rest = s.stage.partition(":")
        target = rest.rpartition("@")[0]
        if op in names:   # per execution: the mean service, and the stage's p95 where a request runs it once
            out[f"{names[op]} {target}"] = {"p50": s.latency_p50_s if s.visits == 1 else s.service_s,
                                            "p95": s.latency_p95_s if s.visits == 1 else None}
    for call, loc in locs.items():
        target = call.split(" ", 1)[1]
        pre, dec = stages.get(f"prefill:{target}@{loc}"), stages.get(f"decode:{target}@{loc}")
        if pre is not None:
            one = pre.visits == 1
            out[f"TTFT {call}"] = {"p50": pre.latency_p50_s if one else pre.service_s,
                                   "p95": pre.latency_p95_s if one else None}
        if dec is not None:
            tokens = dec.figures.get("output_tokens") or 1.0
            tpot = dec.service_s / max(tokens, 1.0)
            out[f"TPOT {call}"] = {"p50": tpot, "p95": tpot}
    return out


def simulated_rows(sim: dict[str, Any], graph: Any) -> dict[str, dict[str, float | None]]:
    """`plait simulate --json`'s figures keyed by the run's row names: end to end, TTFT and TPOT per call."""
    out: dict[str, dict[str, float | None]] = {"end to end": {"p50": sim["e2e"]["p50"], "p95": sim["e2e"]["p95"]}}
    calls = {c["site"]: c for c in sim["calls"]}
    for _, n in graph.walk():
        if n.kind == "llm" and (c := calls.get(f"prefill:{n.target}@{n.loc}")) is not None:
            out[f"TTFT {n.name} {n.target}"] = {"p50": c["ttft"]["p50"], "p95": c["ttft"]["p95"]}
            if c["tpot"]["n"]:
                out[f"TPOT {n.name} {n.target}"] = {"p50": c["tpot"]["p50"], "p95": c["tpot"]["p95"]}
    return out


def measured_rows(stdout: str) -> dict[str, dict[str, float]]:
    """The summary table `plait run` prints: row -> n, p50, p95 (seconds)."""
    out = {}
    for line in stdout.splitlines():
        if (m := ROW.match(line)) is not None:
            out[m.group(1).strip()] = {"n": int(m.group(2)), "p50": float(m.group(3)) / 1e3,
                                       "p95": float(m.group(4)) / 1e3}
    return out


def trace_breakdown(chrome: Path) -> dict[str, Any]:
    """Mean ms per step name of the run's spans: queued (message + worker queue; LLM: engine admission),
    computing, and reply (worker's end to the driver's receipt); and per request the time outside any step."""
    events = json.loads(chrome.read_text())["traceEvents"]
    steps: dict[str, list[list[float]]] = {}
    requests: dict[int, float] = {}
    inside: dict[int, float] = {}
    current: list[float] | None = None
    for e in events:
        if e.get("ph") != "X":
            continue
        name, tid, dur = e["name"], e["tid"], e["dur"] / 1e3
        if name.startswith("request "):
            requests[tid] = dur
        elif name == "queued" and current is not None:
            current[1] = dur
        elif name in ("computing", "transferring") and current is not None:
            current[2] = dur
        else:
            current = [dur, 0.0, 0.0]
            steps.setdefault(name, []).append(current)
            inside[tid] = inside.get(tid, 0.0) + dur
    rows = {name: {"n": len(v), "step_ms": _mean(x[0] for x in v), "queued_ms": _mean(x[1] for x in v),
                   "computing_ms": _mean(x[2] for x in v), "reply_ms": _mean(x[0] - x[1] - x[2] for x in v)}
            for name, v in steps.items()}
    outside = [requests[t] - inside.get(t, 0.0) for t in requests]
    return {"steps": rows, "request_ms": _mean(requests.values()), "outside_steps_ms": _mean(outside)}


def _mean(xs: Any) -> float:
    xs = list(xs)
    return sum(xs) / len(xs) if xs else 0.0


def plan_for(graph: Any, target: str, catalog: Any, qps: float, scale: str, out: Path) -> tuple[Any, list[str]]:
    """`plait run`'s plan for this machine at `qps` (`local_plan`), written as `plait plan --out` writes it."""
    from plait.planner.report import write_report
    from plait.scheduler.local import local_plan

    result, notes = local_plan(graph, target, catalog, qps, scale, max_replicas=1)
    out.mkdir(parents=True, exist_ok=True)
    write_report(result.plan, out)
    (out / "placed.mlir").write_text(result.placed_text)
    return result.plan, notes


def one_rate(name: str, graph: Any, catalog: Any, qps: float, args: argparse.Namespace, env: dict[str, str],
             folder: Path) -> dict[str, Any]:
    """Plan at `qps`, simulate that plan, run it: the three views of one example at one rate."""
    target = EXAMPLES[name]
    plan, notes = plan_for(graph, target, catalog, qps, args.scale, folder / "plan")
    rate = plan.qps   # local_plan may lower it (a pool needing more replicas than the run starts): its note says
    requests = max(args.min_requests, min(args.max_requests, round(rate * args.seconds)))
    arrivals = folder / "arrivals.txt"   # plait run spaces requests evenly: the simulation gets the same stream
    arrivals.write_text("".join(f"{i / rate:.6f}\n" for i in range(args.sim_requests)))
    sim = json.loads(plait(["simulate", target, "--plan", str(folder / "plan"), "--arrivals", str(arrivals),
                            "--requests", str(args.sim_requests), "--json"], env))
    trace = folder / "trace.json"
    run_args = ["run", target, *_inputs(name, graph, requests, folder), "--plan", str(folder / "plan"), "--qps", f"{rate:.4g}", "--requests",
                str(requests), "--follow-figures", "--seed", "0", "--trace", str(trace),
                "--run-dir", str(folder / "runs")]
    if name in DECLARED_TOOLS:
        run_args += ["--tool-latency", "declared"]
    if name == "rag":
        run_args += ["--index", f"wiki={args.index}"]
    started = time.perf_counter()
    stdout = plait(run_args, env)
    (folder / "run.txt").write_text(stdout)
    wall = time.perf_counter() - started
    measured = measured_rows(stdout)
    analytic, simulated = analytic_rows(plan, graph), simulated_rows(sim, graph)
    breakdown = trace_breakdown(trace.with_name("trace.chrome.json"))
    rows = []
    for row, m in measured.items():
        a, s = analytic.get(row, {}), simulated.get(row, {})
        steps = breakdown["steps"].get(row, {})
        rows.append({"row": row, "n": m["n"], "measured_p50_s": m["p50"], "measured_p95_s": m["p95"],
                     "analytic_p50_s": a.get("p50"), "analytic_p95_s": a.get("p95"),
                     "simulated_p50_s": s.get("p50"), "simulated_p95_s": s.get("p95"),
                     "queued_ms": steps.get("queued_ms"), "computing_ms": steps.get("computing_ms")})
    return {"qps": rate, "requests": requests, "plan_notes": notes, "run_command": "plait " + shlex.join(run_args).replace(f"{ROOT}/", ""),
            "run_wall_s": wall, "answered": _answered(stdout), "rows": rows, "trace": breakdown,
            "plan": {"p50_s": plan.p50_s, "p95_s": plan.p95_s, "tpot_s": plan.tpot_s,
                     "stages": [{"stage": s.stage, "visits": s.visits, "service_s": s.service_s,
                                 "p50_s": s.latency_p50_s, "p95_s": s.latency_p95_s} for s in plan.stages]},
            "simulated": {"requests": sim["requests"], "pools": [
                {"id": p["id"], "utilization": p["utilization"], "wait_p95_s": p["wait"]["p95"]} for p in sim["pools"]]}}


def different_inputs(name: str, graph: Any, requests: int) -> list[dict[str, str]]:
    """`requests` different inputs of the agent's first parameter: facts from examples/corpus, spread over the
    topics, asked as ASK[name] says (the fact alone for another agent)."""
    facts = [p.split(". ")[0].strip().rstrip(".") for f in sorted((ROOT / "examples" / "corpus").glob("*.txt"))
             for p in f.read_text().split("\n\n") if p.strip() and not p.startswith("#")]
    step = max(1, len(facts) // requests)
    ask = ASK.get(name, "{fact}")
    return [{graph.params[0].name: ask.format(fact=facts[(i * step) % len(facts)])} for i in range(requests)]


def _inputs(name: str, graph: Any, requests: int, folder: Path) -> list[str]:
    """`plait run`'s input flags: a JSONL file of `requests` different inputs (facts from examples/corpus)."""
    if name == "voice":
        return ["--input", "examples/question.wav"]
    rows = different_inputs(name, graph, requests)
    path = folder / "inputs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return ["--inputs", str(path)]


def _answered(stdout: str) -> str:
    m = re.search(r"^(\d+ of \d+) requests answered", stdout, re.MULTILINE)
    return m.group(1) if m else "?"


def one_example(name: str, args: argparse.Namespace, env: dict[str, str]) -> dict[str, Any]:
    """Capacity from a light plan, then one_rate at each fraction of it; an example with no local plan says why."""
    from plait.cli._agent import traced
    from plait.planner.catalog import LOCAL_DEVICE, load_catalog
    from plait.scheduler.local import LIGHT_QPS, NoLocalPlan
    from plait.sdk.models import at_scale

    target = EXAMPLES[name]
    catalog = load_catalog()
    graph = traced(target)
    scaled = at_scale(graph, args.scale)
    out: dict[str, Any] = {"example": name, "target": target, "scale": args.scale,
                           "tools": DECLARED_TOOLS.get(name, "real (the user's functions)")}
    try:
        light, notes = plan_for(graph, target, catalog, LIGHT_QPS, args.scale, args.out / name / "light-plan")
    except NoLocalPlan as err:
        from plait.planner.inventory import one_type
        from plait.planner.planning import Targets, plan_agent

        free = plan_agent(graph, source=target, catalog=catalog, sweep_points=0, inventory=one_type(LOCAL_DEVICE),
                          targets=Targets(qps=LIGHT_QPS / 10), scale=args.scale).plan
        slow = max(free.stages, key=lambda s: s.latency_p50_s)
        out["not_run"] = (f"no plan for `local` with one replica per pool: {err}. Planned at {LIGHT_QPS / 10:g} req/s "
                          f"with replicas free, a request is predicted to take p50 {free.p50_s:,.0f} s here "
                          f"({slow.stage}: {slow.latency_p50_s:,.0f} s), so it is not run; `plait run` would plan for "
                          "a fleet and remap it, whose predictions are that fleet's, not this machine's")
        out["rates"] = []
        return out
    out["capacity"] = capacity(light)
    out["light_plan_notes"] = notes
    out["rates"] = []
    for fraction in args.fractions:
        qps = round(fraction * out["capacity"]["capacity_qps"], 4)
        result = one_rate(name, scaled, catalog, qps, args, env, args.out / name / f"at-{fraction:g}")
        out["rates"].append({"fraction": fraction, **result})
    return out


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v * 1e3:,.0f}" if v >= 0.1 else f"{v * 1e3:,.1f}"


def _ratio(a: float | None, b: float | None) -> str:
    return "-" if a is None or not b else f"{a / b:.2f}"


def summary_table(data: list[dict[str, Any]]) -> str:
    """End to end per example and rate: measured, analytic, simulated (ms) and the p95 ratios."""
    lines = ["| example | rate req/s (of capacity) | requests | measured p50 / p95 | analytic p50 / p95 | "
             "simulated p50 / p95 | p95 measured/analytic | p95 measured/simulated |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for ex in data:
        if not ex["rates"]:
            lines.append(f"| {ex['example']} | not run | - | - | - | - | - | - |")
        for r in ex["rates"]:
            e = next(x for x in r["rows"] if x["row"] == "end to end")
            lines.append(f"| {ex['example']} | {r['qps']:.3g} ({r['fraction']:.0%}) | {r['answered']} | "
                         f"{_ms(e['measured_p50_s'])} / {_ms(e['measured_p95_s'])} | "
                         f"{_ms(e['analytic_p50_s'])} / {_ms(e['analytic_p95_s'])} | "
                         f"{_ms(e['simulated_p50_s'])} / {_ms(e['simulated_p95_s'])} | "
                         f"**{_ratio(e['measured_p95_s'], e['analytic_p95_s'])}** | "
                         f"{_ratio(e['measured_p95_s'], e['simulated_p95_s'])} |")
    return "\n".join(lines)


def goal_line(data: list[dict[str, Any]]) -> str:
    """Issue 16's goal: measured p95 within 25% of the analytic p95, per example at every rate run."""
    met, run = [], []
    for ex in data:
        if not ex["rates"]:
            continue
        run.append(ex["example"])
        e2e = [next(x for x in r["rows"] if x["row"] == "end to end") for r in ex["rates"]]
        if all(e["analytic_p95_s"] and abs(e["measured_p95_s"] / e["analytic_p95_s"] - 1) <= 0.25 for e in e2e):
            met.append(ex["example"])
    skipped = [ex["example"] for ex in data if not ex["rates"]]
    return (f"Measured p95 within 25% of the analytic p95 at every rate: {len(met)} of {len(data)} examples"
            f" ({', '.join(met) or 'none'}" + (f"; not run: {', '.join(skipped)}" if skipped else "") + ").")


def detail_table(r: dict[str, Any]) -> str:
    """Every row of one run (per execution, ms) beside the predictions, with the trace's queued/computing."""
    lines = ["| row | n | measured p50 / p95 | analytic p50 / p95 | simulated p50 / p95 | p50 m/a | p95 m/a | "
             "p95 m/s | queued / computing (mean, trace) |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for x in r["rows"]:
        trace = "-" if x["queued_ms"] is None else f"{x['queued_ms']:.1f} / {x['computing_ms']:.1f}"
        lines.append(f"| {x['row']} | {x['n']} | {_ms(x['measured_p50_s'])} / {_ms(x['measured_p95_s'])} | "
                     f"{_ms(x['analytic_p50_s'])} / {_ms(x['analytic_p95_s'])} | "
                     f"{_ms(x['simulated_p50_s'])} / {_ms(x['simulated_p95_s'])} | "
                     f"{_ratio(x['measured_p50_s'], x['analytic_p50_s'])} | "
                     f"{_ratio(x['measured_p95_s'], x['analytic_p95_s'])} | "
                     f"{_ratio(x['measured_p95_s'], x['simulated_p95_s'])} | {trace} |")
    return "\n".join(lines)


def findings(r: dict[str, Any]) -> list[str]:
    """Rows whose measured p50 is off the analytic one by more than 25%, with the trace's split, and the time
    each request spent outside any step (the driver between steps)."""
    out = []
    for x in r["rows"]:
        m, a = x["measured_p50_s"], x["analytic_p50_s"]
        if a and x["row"] != "end to end" and not 0.8 <= m / a <= 1.25:
            split = "" if x["queued_ms"] is None else (f" (trace: queued {x['queued_ms']:.1f} ms, computing "
                                                       f"{x['computing_ms']:.1f} ms)")
            out.append(f"{x['row']}: measured p50 {_ms(m)} ms against {_ms(a)} ms predicted, {m / a:.2f}x{split}")
    t = r["trace"]
    out.append(f"outside any step (the driver between steps): {t['outside_steps_ms']:.1f} ms of a mean "
               f"{t['request_ms']:.0f} ms per request")
    return out


def markdown(data: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    parts = [f"Measured on {meta['date']} with `{meta['command']}` (load average before: {meta['load_before']}, "
             f"after: {meta['load_after']}; {meta['wall_s']:.0f} s in all). This machine as calibrated: "
             f"{meta['local']}.", "", summary_table(data), "", goal_line(data), ""]
    for ex in data:
        parts.append(f"### {ex['example']} (`{ex['target']}`, LLMs at @{ex['scale']})")
        parts.append("")
        if "not_run" in ex:
            parts += [f"Not run: {ex['not_run']}.", ""]
            continue
        c = ex["capacity"]
        parts.append(f"Capacity {c['capacity_qps']:.3g} req/s: 1 / {c['busy_s_shared_cores']:.2f} s of llm, encoder "
                     f"and search busy time per request (they share the cores), slowest tool "
                     f"{c['busy_s_slowest_tool']:.2f} s (if each pool had the machine to itself, as the planner "
                     f"costs them: {c['capacity_if_pools_had_the_machine_each_qps']:.3g} req/s). Tools: {ex['tools']}.")
        for note in ex.get("light_plan_notes", []):
            parts.append(f"Plan note: {note}")
        for r in ex["rates"]:
            parts += ["", f"At {r['qps']:.3g} req/s ({r['fraction']:.0%} of capacity), {r['answered']} requests, "
                          f"`{r['run_command']}`:", "", detail_table(r), ""]
            parts += [f"- {line}" for line in [*r["plan_notes"], *findings(r)]]
        parts.append("")
    return "\n".join(parts)


BEGIN, END = "<!-- predict_vs_run.py: begin -->", "<!-- predict_vs_run.py: end -->"


def write_doc(path: Path, body: str, begin: str = BEGIN, end: str = END) -> None:
    """Replace the generated part of `path` (between the markers), keeping the hand-written analysis around it."""
    text = path.read_text() if path.is_file() else f"# Predicted against executed\n\n{begin}\n{end}\n"
    head, _, rest = text.partition(begin)
    _, _, tail = rest.partition(end)
    path.write_text(f"{head}{begin}\n{body}\n{end}{tail}")


def prepare_machine(calibrate: bool, index: Path | None, env: dict[str, str]) -> str:
    """The private user catalog's `local` device (measured now if missing or `calibrate`) and, when `index` is
    given, rag's wiki index there (built if missing)."""
    from plait.planner.catalog import LOCAL_DEVICE, load_catalog

    if calibrate or LOCAL_DEVICE not in load_catalog().devices:
        plait(["calibrate", "--cpu"], env)
    if index is not None and not (index / "index.json").is_file():
        plait(["index", "build", "examples/corpus", "--model", "minilm-l6", "--out", str(index)], env)
    local = load_catalog().device(LOCAL_DEVICE)
    return (f"peak fp32 {local.flops['fp32'].value * 1e3:.1f} GFLOP/s, {local.mem_bw_gbps.value:g} GB/s, per-op "
            f"{local.factors['launch_eager_s'].value * 1e6:.2f} us ({local.flops['fp32'].source})")


def add_machine_args(ap: argparse.ArgumentParser, name: str) -> None:
    """The options every bench that runs on this machine's `local` device shares (output folder, private user
    catalog, rag's index, calibration, JSON and doc)."""
    ap.add_argument("--out", type=Path, default=ROOT / "out" / name)
    ap.add_argument("--config-dir", type=Path, default=None, help="PLAIT_CONFIG_DIR (default: OUT/config)")
    ap.add_argument("--index", type=Path, default=None, help="rag's wiki index (default: OUT/wiki, built if missing)")
    ap.add_argument("--calibrate", action="store_true", help="run `plait calibrate --cpu` even if `local` exists")
    ap.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / f"{name}.json")
    ap.add_argument("--doc", type=Path, default=None, help="write the tables into this markdown file")


class MachineRun(NamedTuple):   # not a dataclass: tests load this file by path, outside sys.modules
    """A bench run's environment and what its JSON records about the machine."""

    env: dict[str, str]
    local: str
    load_before: tuple[float, float, float]
    started: float

    def meta(self, script: str, argv: list[str] | None) -> dict[str, Any]:
        return {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "local": self.local,
                "command": f".venv/bin/python bench/{script} " + shlex.join(argv if argv is not None else sys.argv[1:]),
                "load_before": " ".join(f"{x:.2f}" for x in self.load_before),
                "load_after": " ".join(f"{x:.2f}" for x in os.getloadavg()),
                "wall_s": time.perf_counter() - self.started}


def start_machine(args: argparse.Namespace, needs_index: bool) -> MachineRun:
    """Resolve add_machine_args' paths, point plait at the private catalog, and measure `local` (and build rag's
    index when `needs_index`) if missing."""
    args.out = args.out.resolve()
    args.index = (args.index or args.out / "wiki").resolve()
    config = (args.config_dir or args.out / "config").resolve()
    config.mkdir(parents=True, exist_ok=True)
    os.environ["PLAIT_CONFIG_DIR"] = str(config)   # before plait reads a catalog, here and in every command
    os.chdir(ROOT)   # the examples' paths are relative to the repository
    env = dict(os.environ)
    load_before, started = os.getloadavg(), time.perf_counter()
    local = prepare_machine(args.calibrate, args.index if needs_index else None, env)
    return MachineRun(env, local, load_before, started)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--examples", nargs="+", default=list(EXAMPLES), choices=list(EXAMPLES))
    ap.add_argument("--fractions", nargs="+", type=float, default=[0.3, 0.7], help="rates, as fractions of capacity")
    ap.add_argument("--scale", default="tiny", choices=["tiny", "small"])
    ap.add_argument("--seconds", type=float, default=50.0, help="requests per rate: rate x this, within the bounds")
    ap.add_argument("--min-requests", type=int, default=10)
    ap.add_argument("--max-requests", type=int, default=40)
    ap.add_argument("--sim-requests", type=int, default=1000)
    add_machine_args(ap, "predict_vs_run")
    args = ap.parse_args(argv)
    machine = start_machine(args, "rag" in args.examples)
    data = [one_example(name, args, machine.env) for name in args.examples]
    meta = machine.meta("predict_vs_run.py", argv)
    print(summary_table(data))
    print(goal_line(data))
    for ex in data:
        for r in ex["rates"]:
            print(f"\n{ex['example']} at {r['qps']:.3g} req/s ({r['fraction']:.0%}):")
            print(detail_table(r))
            for line in [*r["plan_notes"], *findings(r)]:
                print(f"  {line}")
        if "not_run" in ex:
            print(f"\n{ex['example']}: not run: {ex['not_run']}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({**meta, "examples": data}, indent=2) + "\n")
    print(f"wrote {args.json}")
    if args.doc is not None:
        write_doc(args.doc, markdown(data, meta))
        print(f"wrote {args.doc}")


if __name__ == "__main__":
    main()
