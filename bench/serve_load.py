"""Load against the simulation: `plait serve` of the rag and react examples driven at 1x, 2x and 5x their planned
rate by an open-loop asyncio client on loopback, beside `plait simulate` of the same plan at the same arrival
times (issue 18, section 3).

Run: .venv/bin/python bench/serve_load.py [--agents rag react] [--multiples 1 2 5] [--seconds 60] [--doc FILE]

For each agent: plan it for this machine as `plait serve` without --plan does (the `local` device of `plait
calibrate --cpu`, in a private user catalog under --out; `scheduler.local.local_plan`, one replica per pool),
write the plan as `plait plan --out` writes it, and start `plait serve FILE:AGENT --plan DIR --port 0
--follow-figures` as a subprocess (react: `--tool-latency declared`, its search tool stands in for a network
API). The planned rate is that plan's `qps`. At each multiple of it: draw Poisson arrival times for --seconds
(at most --max-requests), send each request at its time whatever the server is doing (open loop), each with a
timeout, and sort the answers: 200, 503 with Retry-After (shed at admission), 504 (the server's deadline),
client timeouts, other 5xx, connection errors. The same arrival times go to `plait simulate FILE:AGENT --plan
DIR --arrivals FILE --policy fifo --json`. Prints a table per agent (measured, simulated, ratios) with the load
average before and after each level, writes bench/results/serve_load.json and, with --doc, the markdown.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import shlex
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
from _runtime_common import percentile, print_table
from predict_vs_run import (
    DECLARED_TOOLS,
    add_machine_args,
    different_inputs,
    plait,
    plan_for,
    start_machine,
    write_doc,
)

ROOT = Path(__file__).resolve().parent.parent
AGENTS = {"rag": "examples/rag.py:answer", "react": "examples/react.py:solve"}
KINDS = ("ok", "shed_503", "timeout_504", "client_timeout", "error_5xx", "other")
BEGIN, END = "<!-- serve_load.py: begin -->", "<!-- serve_load.py: end -->"
IN_PROCESS = threading.Lock()   # tracing and the in-process replay run one at a time


@dataclass
class Outcome:
    """One request as the client saw it: when it was sent (s from the level's start), how long until its answer,
    and what kind of answer."""

    sent_s: float
    seconds: float
    kind: str
    status: int | None = None
    retry_after: str | None = None
    error: str | None = None   # a request that got no HTTP answer: the client's exception


def poisson_times(rate: float, seconds: float, max_requests: int, seed: int) -> list[float]:
    """Arrival times (s) of a Poisson stream at `rate` within `seconds`, at most `max_requests`; the first at 0
    (a level always sends at least one request)."""
    rng = random.Random(seed)
    times, t = [0.0], 0.0
    while len(times) < max_requests:
        t += rng.expovariate(rate)
        if t >= seconds:
            break
        times.append(t)
    return times


def unique_inputs(name: str, graph: Any, count: int, first: int) -> list[dict[str, str]]:
    """`count` inputs (facts from examples/corpus) numbered from `first`: no two requests of a run ask the same,
    so the engine's prefix cache serves only what their prompts really share (the template, the passages)."""
    rows = different_inputs(name, graph, count)
    return [{k: f"{v} (request {first + i})" for k, v in row.items()} for i, row in enumerate(rows)]


def sort_answer(status: int, headers: Any) -> tuple[str, str | None]:
    """(kind, Retry-After) of an HTTP answer: a 503 counts as shed only when it says when to come back."""
    retry = headers.get("retry-after")
    if status == 200:
        return "ok", None
    if status == 503 and retry is not None:
        return "shed_503", retry
    if status == 504:
        return "timeout_504", None
    return ("error_5xx" if status >= 500 else "other"), retry


async def one_request(client: httpx2.AsyncClient, url: str, body: dict[str, Any], sent_s: float,
                      timeout_s: float) -> Outcome:
    start = time.perf_counter()
    try:
        resp = await client.post(url, json=body, timeout=timeout_s)
    except httpx2.TimeoutException:
        return Outcome(sent_s, time.perf_counter() - start, "client_timeout")
    except httpx2.TransportError as err:   # refused, reset: the server is gone or overwhelmed
        return Outcome(sent_s, time.perf_counter() - start, "other", error=type(err).__name__)
    kind, retry = sort_answer(resp.status_code, resp.headers)
    return Outcome(sent_s, time.perf_counter() - start, kind, resp.status_code, retry)


async def drive(url: str, times: list[float], inputs: list[dict[str, Any]], timeout_s: float) -> list[Outcome]:
    """Send inputs[i] at times[i] (open loop: a slow answer never delays the next send), each bounded by
    `timeout_s`; every outcome once all have answered or timed out."""
    limits = httpx2.Limits(max_connections=len(times), max_keepalive_connections=len(times))
    async with httpx2.AsyncClient(limits=limits, trust_env=False) as client:
        loop = asyncio.get_running_loop()
        start = loop.time()
        tasks = []
        for t, row in zip(times, inputs, strict=True):
            await asyncio.sleep(max(0.0, start + t - loop.time()))
            tasks.append(asyncio.create_task(one_request(client, url, {"inputs": row}, loop.time() - start,
                                                          timeout_s)))
        return list(await asyncio.gather(*tasks))


def measured_figures(outcomes: list[Outcome], sla_s: float | None) -> dict[str, Any]:
    """p50/p95 of the answered (200) requests, SLA attainment over every request sent, errors by kind, and
    throughput: answers per second from the first send to the last answer."""
    ok = [o.seconds for o in outcomes if o.kind == "ok"]
    span = max(o.sent_s + o.seconds for o in outcomes) - min(o.sent_s for o in outcomes)
    return {"sent": len(outcomes), "answered": len(ok),
            "p50_s": percentile(ok, 0.5) if ok else None, "p95_s": percentile(ok, 0.95) if ok else None,
            "within_sla": sum(s <= sla_s for s in ok) / len(outcomes) if sla_s else None,
            "throughput_qps": len(ok) / span if span > 0 else 0.0,
            "kinds": {k: sum(o.kind == k for o in outcomes) for k in KINDS},
            "retry_after_s": sorted({o.retry_after for o in outcomes if o.kind == "shed_503"}),
            "client_errors": sorted({o.error for o in outcomes if o.error is not None})}


def simulated_figures(target: str, plan_dir: Path, times: list[float], seed: int, sla_s: float | None,
                      folder: Path, env: dict[str, str]) -> dict[str, Any]:
    """`plait simulate --plan DIR --arrivals FILE --policy fifo --json` at the level's arrival times, and the
    share within the SLA p95 end to end (the same replay in process with that target alone: the CLI's
    `within_sla` applies the plan's targets and the agent's TTFT/TPOT too)."""
    folder.mkdir(parents=True, exist_ok=True)
    arrivals = folder / "arrivals.txt"
    arrivals.write_text("".join(f"{t:.6f}\n" for t in times))
    args = ["simulate", target, "--plan", str(plan_dir), "--arrivals", str(arrivals), "--requests", str(len(times)),
            "--seed", str(seed), "--policy", "fifo", "--json"]
    started = time.perf_counter()
    sim = json.loads(plait(args, env))
    out = {"command": "plait " + shlex.join(args).replace(f"{ROOT}/", ""), "requests": sim["requests"],
           "p50_s": sim["e2e"]["p50"], "p95_s": sim["e2e"]["p95"], "p99_s": sim["e2e"]["p99"],
           "throughput_qps": sim["requests"] / sim["simulated_s"] if sim["simulated_s"] > 0 else 0.0,
           "cli_within_sla": sim["within_sla"], "wall_s": time.perf_counter() - started,
           "pools": [{"id": p["id"], "utilization": p["utilization"], "wait_p95_s": p["wait"]["p95"]}
                     for p in sim["pools"]], "within_sla": None}
    if sla_s is not None:
        with IN_PROCESS:
            out["within_sla"] = e2e_within_sla(target, plan_dir, times, seed, sla_s, out["p95_s"])
    return out


def e2e_within_sla(target: str, plan_dir: Path, times: list[float], seed: int, sla_s: float, p95_s: float) -> float:
    """The share of the replay's requests within `sla_s` end to end: the CLI's replay again, in process, with
    that target alone (its p95 must be the CLI's, `p95_s`)."""
    from plait.cli._agent import traced
    from plait.planner.simulate import SimOptions, load_plan, pools_of, simulate
    from plait.sdk.models import at_scale

    plan = load_plan(plan_dir)
    graph = at_scale(traced(target), plan.scale) if plan.scale else traced(target)
    again = simulate(graph, pools_of(plan), SimOptions(requests=len(times), arrivals=times, seed=seed,
                                                       policy="fifo", sla_p95_s=sla_s))
    if abs(again.e2e.p95 - p95_s) > 1e-6 * max(1.0, p95_s):
        raise RuntimeError(f"the in-process replay's p95 {again.e2e.p95} differs from the CLI's {p95_s}")
    assert again.within_sla is not None   # a target was given
    return again.within_sla


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    url: str
    log: Path

    def stop(self) -> int:
        """SIGTERM (the server drains and stops its workers), then its exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(90)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def start_server(args: list[str], log: Path, env: dict[str, str], timeout_s: float = 300.0) -> Server:
    """`plait serve ARGS --port 0` with its output in `log`, once it prints the port it listens on."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "plait.cli", "serve", *args, "--port", "0"], cwd=ROOT,
                                env=env, stdout=sink, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout_s
    while True:
        lines = log.read_text(errors="replace").splitlines()
        if found := [line for line in lines if line.startswith("listening on ")]:
            return Server(proc, found[0].split()[-1], log)
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"plait serve {shlex.join(args)} did not start:\n" + "\n".join(lines[-30:]))
        time.sleep(0.2)


def admission_for(plan: Any, args: argparse.Namespace) -> tuple[int, float]:
    """The server's --concurrency and --deadline-s: as given, else sized to the plan, so that at its planned rate
    the server admits what the plan keeps in flight (Little's law at the plan's p95: rate x p95, at least the
    server's default 4, at most 256) and answers late rather than cutting requests at the SLA (twice the plan's
    p95, at least 30 s): latencies are then measured where the simulation measures them."""
    concurrency = args.concurrency or min(256, max(4, math.ceil(plan.qps * plan.p95_s)))
    deadline_s = args.deadline_s or max(30.0, math.ceil(2 * plan.p95_s))
    return concurrency, deadline_s


def one_agent(name: str, args: argparse.Namespace, env: dict[str, str]) -> dict[str, Any]:
    """Plan, serve, and at each multiple of the planned rate: load the server and simulate the same arrivals."""
    from plait.cli._agent import traced
    from plait.planner.catalog import load_catalog

    target = AGENTS.get(name, name)
    graph = traced(target)
    sla_s = graph.sla.p95_ms / 1e3 if graph.sla is not None and graph.sla.p95_ms is not None else None
    folder = args.out / name.replace("/", "_").replace(":", "_")
    plan, notes = plan_for(graph, target, load_catalog(), None, "tiny", folder / "plan")
    concurrency, deadline_s = admission_for(plan, args)
    serve_args = [target, "--plan", str(folder / "plan"), "--follow-figures", "--seed", str(args.seed),
                  "--run-dir", str(folder / "serve"), "--deadline-s", f"{deadline_s:g}",
                  "--concurrency", str(concurrency), "--max-queue", str(args.max_queue)]
    if name in DECLARED_TOOLS:
        serve_args += ["--tool-latency", "declared"]
    if name == "rag":
        serve_args += ["--index", f"wiki={args.index}"]
    if args.max_tokens is not None:
        serve_args += ["--max-tokens", str(args.max_tokens)]
    server = start_server(serve_args, folder / "serve.log", env)
    url = f"{server.url}/v1/agents/{graph.agent_name}/invoke"
    levels: list[dict[str, Any]] = []
    streams: list[list[float]] = []   # each level's arrival times, replayed by the simulator
    try:
        sent = 0
        for _ in range(args.warmup):   # one at a time: loading and first-call costs stay out of the levels
            asyncio.run(drive(url, [0.0], unique_inputs(name, graph, 1, sent), deadline_s + 30))
            sent += 1
        for i, multiple in enumerate(args.multiples):
            rate = multiple * plan.qps
            times = poisson_times(rate, args.seconds, args.max_requests, args.seed + i)
            inputs = unique_inputs(name, graph, len(times), sent)
            sent += len(times)
            load_before = os.getloadavg()
            started = time.perf_counter()
            outcomes = asyncio.run(drive(url, times, inputs, deadline_s + 10))
            wall = time.perf_counter() - started
            measured = {**measured_figures(outcomes, sla_s), "wall_s": wall,
                        "load_before": list(load_before), "load_after": list(os.getloadavg())}
            levels.append({"multiple": multiple, "qps": rate, "requests": len(times), "seed": args.seed + i,
                           "measured": measured})
            streams.append(times)
            print(f"{name} x{multiple:g}: measured {errors_cell(measured['kinds'])} errors, {measured['answered']} "
                  f"answered", flush=True)
            time.sleep(args.pause)   # let the server's queue and the load average settle
    finally:
        stopped = server.stop()
    # after the server has stopped, two at a time: the simulations' CPU stays out of the measured levels
    with ThreadPoolExecutor(2) as pool:
        sims = list(pool.map(lambda lv, times: simulated_figures(target, folder / "plan", times, lv["seed"], sla_s,
                                                                 folder / f"x{lv['multiple']:g}", env),
                             levels, streams))
    for lv, sim in zip(levels, sims, strict=True):
        lv["simulated"] = sim
        print(level_line(name, lv), flush=True)
    return {"agent": name, "target": target, "sla_p95_s": sla_s, "planned_qps": plan.qps, "plan_notes": notes,
            "plan_p50_s": plan.p50_s, "plan_p95_s": plan.p95_s, "concurrency": concurrency, "deadline_s": deadline_s,
            "max_queue": args.max_queue, "serve_command": "plait serve " + shlex.join(
                serve_args).replace(f"{ROOT}/", "") + " --port 0", "server_exit": stopped, "levels": levels}


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v * 1e3:,.0f}"


def _ratio(a: float | None, b: float | None) -> str:
    return "-" if a is None or not b else f"{a / b:.2f}"


def _share(v: float | None) -> str:
    return "-" if v is None else f"{v:.0%}"


def _load(v: list[float]) -> str:
    return f"{v[0]:.2f}"


def errors_cell(kinds: dict[str, int]) -> str:
    parts = [f"{kinds[k]} {label}" for k, label in (("shed_503", "503"), ("timeout_504", "504"),
                                                      ("client_timeout", "client timeout"),
                                                      ("error_5xx", "5xx"), ("other", "other")) if kinds[k]]
    return ", ".join(parts) or "none"


def level_line(name: str, lv: dict[str, Any]) -> str:
    m, s = lv["measured"], lv["simulated"]
    return (f"{name} x{lv['multiple']:g} ({lv['qps']:.3g} req/s, {lv['requests']} sent): measured p50/p95 "
            f"{_ms(m['p50_s'])}/{_ms(m['p95_s'])} ms, simulated {_ms(s['p50_s'])}/{_ms(s['p95_s'])} ms; "
            f"errors {errors_cell(m['kinds'])}; load {_load(m['load_before'])} -> {_load(m['load_after'])}")


HEADER = ["level", "req/s", "sent", "answered", "p50 ms meas / sim", "p50 m/s", "p95 ms meas / sim", "p95 m/s",
          "within SLA meas / sim", "throughput req/s meas / sim", "thr m/s", "errors (measured)", "load 1m before / after"]


def table_rows(agent: dict[str, Any]) -> list[list[str]]:
    rows = []
    for lv in agent["levels"]:
        m, s = lv["measured"], lv["simulated"]
        rows.append([f"{lv['multiple']:g}x", f"{lv['qps']:.3g}", str(m["sent"]), str(m["answered"]),
                     f"{_ms(m['p50_s'])} / {_ms(s['p50_s'])}", _ratio(m["p50_s"], s["p50_s"]),
                     f"{_ms(m['p95_s'])} / {_ms(s['p95_s'])}", _ratio(m["p95_s"], s["p95_s"]),
                     f"{_share(m['within_sla'])} / {_share(s['within_sla'])}",
                     f"{m['throughput_qps']:.2f} / {s['throughput_qps']:.2f}",
                     _ratio(m["throughput_qps"], s["throughput_qps"]), errors_cell(m["kinds"]),
                     f"{_load(m['load_before'])} / {_load(m['load_after'])}"])
    return rows


def agent_title(agent: dict[str, Any]) -> str:
    sla = f"SLA p95 {agent['sla_p95_s']:g} s" if agent["sla_p95_s"] else "no SLA"
    return (f"{agent['agent']} (`{agent['target']}`): planned rate {agent['planned_qps']:g} req/s, {sla}; "
            f"the plan predicts p50 {_ms(agent['plan_p50_s'])} ms, p95 {_ms(agent['plan_p95_s'])} ms; served with "
            f"--concurrency {agent['concurrency']}, --max-queue {agent['max_queue']}, --deadline-s "
            f"{agent['deadline_s']:g}")


def print_tables(data: list[dict[str, Any]]) -> None:
    for agent in data:
        print(f"\n{agent_title(agent)}")
        print_table(HEADER, table_rows(agent))


def markdown(data: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    parts = [f"Measured on {meta['date']} with `{meta['command']}` (load average before: {meta['load_before']}, "
             f"after: {meta['load_after']}; {meta['wall_s']:.0f} s in all). This machine as calibrated: "
             f"{meta['local']}.", ""]
    for agent in data:
        parts += [f"**{agent_title(agent)}.** `{agent['serve_command']}`", ""]
        parts += [f"- plan note: {n}" for n in agent["plan_notes"]]
        parts += ["", "| " + " | ".join(HEADER) + " |", "|---|" + "---:|" * (len(HEADER) - 2) + "---|"]
        parts += ["| " + " | ".join(r) + " |" for r in table_rows(agent)]
        parts.append("")
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--agents", nargs="+", default=list(AGENTS), help="rag, react, or FILE:AGENT")
    ap.add_argument("--multiples", nargs="+", type=float, default=[1.0, 2.0, 5.0], help="of the planned rate")
    ap.add_argument("--seconds", type=float, default=60.0, help="length of each level's arrival stream")
    ap.add_argument("--max-requests", type=int, default=2000, help="at most this many requests per level")
    ap.add_argument("--warmup", type=int, default=2, help="requests sent (one at a time) before the first level")
    ap.add_argument("--pause", type=float, default=5.0, help="seconds between levels")
    ap.add_argument("--deadline-s", type=float, default=None, help="`plait serve --deadline-s` (default: twice "
                    "the plan's p95, at least 30 s); the client waits 10 s more")
    ap.add_argument("--concurrency", type=int, default=None, help="`plait serve --concurrency` (default: the "
                    "planned rate x the plan's p95, at least 4, at most 256)")
    ap.add_argument("--max-queue", type=int, default=16, help="`plait serve --max-queue` (its default)")
    ap.add_argument("--max-tokens", type=int, default=None, help="`plait serve --max-tokens` (default: none given)")
    ap.add_argument("--seed", type=int, default=0)
    add_machine_args(ap, "serve_load")
    args = ap.parse_args(argv)
    machine = start_machine(args, "rag" in args.agents)
    data = [one_agent(name, args, machine.env) for name in args.agents]
    meta = {**machine.meta("serve_load.py", argv), "seconds_per_level": args.seconds,
            "max_requests": args.max_requests, "max_tokens": args.max_tokens, "cpus": os.cpu_count()}
    print_tables(data)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({**meta, "agents": data}, indent=2) + "\n")
    print(f"wrote {args.json}")
    if args.doc is not None:
        write_doc(args.doc, markdown(data, meta), BEGIN, END)
        print(f"wrote {args.doc}")


if __name__ == "__main__":
    main()
