"""Attached pods against local workers: one plan of tests/agents/cluster_agent.py:lookup (an encoder, a tool and
an LLM pool; the embedding crosses a Gloo pair from the encoder's process to the tool's) served two ways at once on
this machine, on loopback, and the same requests sent to both, interleaved, so the machine's noise falls on both.

- local: `plait serve AGENT --plan DIR --remap-cpu --port 0`, which spawns its three workers itself and pins each
  to its share of the cores (scheduler/workers.py core_shares).
- attached: the containers' entrypoint (`python -m plait.cluster.entrypoint`) as local processes, as
  tests/test_cluster_entrypoint.py runs them: the router (`plait serve --attach` on ports the OS picks) and one
  worker pod per pool replica, each reading the ConfigMap's files (cluster.from_plan.deployment_bundle) from a
  folder. With --pin local (the default) each pod is pinned to the cores local mode gave its pool's worker, so the
  two modes differ only in how the workers are started and reached; with --pin none each pod has every core (its
  torch uses that many threads), as a pod on a node of its own would.

Measured per mode: start-up (process start to the `listening on` line; attached: the router's process start,
with the pods started as soon as it prints its control ports), then --requests sequential requests and
--concurrent-requests more from --threads client threads, in alternating batches (--batch), after --warmup each.
Reported: p50/p95 end to end (client-side), p50 of the server's `seconds` and of each step of the response's
`steps` list, the concurrent phase's throughput, and attached/local per row. The tool's notes file checks that
each mode's tool ran every request on a 384-dimension embedding, in the mode's own tool process.

Run: .venv/bin/python bench/attached_vs_local.py [--requests 100] [--threads 4] [--pin local|none] [--doc FILE]
(about 1 minute). Writes bench/results/attached_vs_local.json (--pin none: attached_vs_local_pin_none.json; or
--out) and, with --doc, the table into FILE between its --pin's markers (docs/cluster.md). Every process it starts runs in a session of its own, which is
stopped at the end (on error too) and checked empty with `pgrep -s`.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _runtime_common import ROOT, machine, percentile
from predict_vs_run import write_doc

AGENT = "tests/agents/cluster_agent.py:lookup"
INVOKE = "/v1/agents/lookup/invoke"
KEY = "bench-key-0123456789"   # both modes take the same bearer token, so their HTTP layers do the same work
MODES = ("local", "attached")
NAME = "lk"                    # the AgentDeployment's name the ConfigMap is made for


@dataclass
class Proc:
    """A process this bench started (in a session of its own) and its output lines, each with when it came."""

    popen: subprocess.Popen[str]
    started: float
    lines: list[tuple[float, str]] = field(default_factory=list)

    @classmethod
    def start(cls, argv: list[str], env: dict[str, str], cwd: Path, cores: list[int] | None = None) -> Proc:
        pin = None if cores is None else (lambda: os.sched_setaffinity(0, cores))
        started = time.perf_counter()
        popen = subprocess.Popen(argv, env={**os.environ, **env}, cwd=cwd, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True, start_new_session=True, preexec_fn=pin)
        proc = cls(popen, started)
        threading.Thread(target=proc._read, daemon=True).start()
        return proc

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.lines.append((time.perf_counter(), line.rstrip()))

    def wait_line(self, needle: str, timeout_s: float = 300.0) -> tuple[float, str]:
        """(seconds from this process's start, the first line holding `needle`)."""
        deadline = time.monotonic() + timeout_s
        while True:
            found = next(((t, line) for t, line in list(self.lines) if needle in line), None)
            if found is not None:
                return found[0] - self.started, found[1]
            if self.popen.poll() is not None or time.monotonic() > deadline:
                time.sleep(0.2)   # the reader's last lines
                said = "\n".join(line for _, line in self.lines[-40:])
                raise RuntimeError(f"{self.popen.args!r} printed no line with {needle!r}; it said:\n{said}")
            time.sleep(0.02)


class Sessions:
    """Every process the bench starts; `stop` ends them all (SIGTERM, then SIGKILL to what is left of each
    session) and returns what pgrep still finds in them (nothing, or the bench failed to clean up)."""

    def __init__(self) -> None:
        self.procs: list[Proc] = []

    def start(self, argv: list[str], env: dict[str, str], cwd: Path, cores: list[int] | None = None) -> Proc:
        proc = Proc.start(argv, env, cwd, cores)
        self.procs.append(proc)
        return proc

    def stop(self, grace_s: float = 60.0) -> list[str]:
        for proc in self.procs:   # all at once: a local server stops its workers, a pod finishes what it holds
            if proc.popen.poll() is None:
                proc.popen.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for proc in self.procs:
            try:
                proc.popen.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.popen.kill()
                proc.popen.wait()
        left = []
        for proc in self.procs:   # a local server's workers live in its session; wait for them, then end them
            sid = str(proc.popen.pid)
            while _in_session(sid) and time.monotonic() < deadline:
                time.sleep(0.1)
            for pid in _in_session(sid):
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
                left.append(f"{pid} (session {sid}, killed)")
        time.sleep(0.2)
        return left + [f"{pid} (session {p.popen.pid}, still running)" for p in self.procs
                       for pid in _in_session(str(p.popen.pid))]


def _in_session(sid: str) -> list[str]:
    done = subprocess.run(["pgrep", "-s", sid], capture_output=True, text=True)
    return done.stdout.split()


def call(url: str, path: str, body: Any = None, timeout: float = 120.0) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url + path, data=data, method="GET" if data is None else "POST")
    req.add_header("Authorization", f"Bearer {KEY}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


@dataclass
class Sample:
    """One request as the client saw it, with the server's own figures."""

    seconds: float
    status: int
    server_s: float = 0.0
    steps: list[tuple[str, float]] = field(default_factory=list)


def invoke(url: str, text: str) -> Sample:
    start = time.perf_counter()
    status, body = call(url, INVOKE, {"inputs": {"text": text}, "timeout_s": 120})
    elapsed = time.perf_counter() - start
    if status != 200:
        return Sample(elapsed, status)
    return Sample(elapsed, status, float(body["seconds"]), [(s["step"], float(s["seconds"])) for s in body["steps"]])


# --- the two deployments ---------------------------------------------------------------------------------------

def plan_and_mount(work: Path) -> tuple[Path, Path, dict[str, str]]:
    """`plait plan AGENT --out` (a fleet plan: no sweep, no simulation), the ConfigMap's files of it in a folder
    (what the kubelet mounts in each pod), and its pools (id -> kind)."""
    from plait.cluster.from_plan import deployment_bundle
    from plait.planner.plan import Plan

    plan = work / "plan"
    subprocess.run([sys.executable, "-m", "plait.cli", "plan", AGENT, "--out", str(plan), "--sweep", "0",
                    "--no-simulate"], cwd=ROOT, check=True, capture_output=True, text=True)
    mount = work / "configmap"
    mount.mkdir()
    for key, text in deployment_bundle(AGENT, plan, name=NAME).config_map["data"].items():
        (mount / key).write_text(text)
    pools = Plan.model_validate_json((plan / "plan.json").read_text()).pools
    if any(p.replicas != 1 for p in pools):
        raise RuntimeError(f"expected one replica per pool, the plan has {[(p.id, p.replicas) for p in pools]}")
    return plan, mount, {p.id: p.kind for p in pools}


@dataclass
class Deployment:
    """One mode, started: its URL, its start-up, and its workers (key -> pid, cores)."""

    mode: str
    url: str
    startup_s: float
    workers: dict[str, dict[str, Any]]
    notes: Path
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def pids(self) -> dict[str, int]:
        """The server's and each worker's process (named by its pool's kind)."""
        return {"server": self.details["server_pid"], **{k.split("-")[0]: w["pid"] for k, w in self.workers.items()}}


def workers_of(url: str) -> dict[str, dict[str, Any]]:
    """The server's workers as its /healthz names them, with each process's core affinity read from the OS."""
    status, body = call(url, "/healthz")
    if status != 200:
        raise RuntimeError(f"{url}/healthz answered {status}: {body}")
    return {key: {"pid": w["pid"], "cores": sorted(os.sched_getaffinity(w["pid"]))}
            for key, w in sorted(body["workers"].items())}


def start_local(sessions: Sessions, plan: Path, work: Path) -> Deployment:
    notes = work / "notes-local"
    proc = sessions.start([sys.executable, "-m", "plait.cli", "serve", AGENT, "--plan", str(plan), "--remap-cpu",
                           "--port", "0", "--run-dir", str(work / "local")],
                          {"PLAIT_NOTES": str(notes), "PLAIT_API_KEY": KEY}, ROOT)
    startup, line = proc.wait_line("listening on ")
    url = line.split()[-1]
    return Deployment("local", url, startup, workers_of(url), notes,
                      {"server_pid": proc.popen.pid, "server_cores": sorted(os.sched_getaffinity(proc.popen.pid))})


def start_attached(sessions: Sessions, mount: Path, pools: dict[str, str], work: Path,
                   cores: dict[str, list[int]] | None) -> Deployment:
    """The router's entrypoint, then (once it printed its control ports) every pool's pod at once, each pinned to
    `cores[pool]` when given; ready at the router's `listening on` (every pod attached)."""
    notes = work / "notes-attached"
    entrypoint = [sys.executable, "-m", "plait.cluster.entrypoint"]
    router = sessions.start(entrypoint, {"PLAIT_ROLE": "router", "PLAIT_AGENT_DIR": str(mount),
                                         "PLAIT_RUN_DIR": str(work / "router"), "PLAIT_ROUTER_PORT": "0",
                                         "PLAIT_CONTROL_PORTS": "0,0,0", "PLAIT_BIND": "127.0.0.1",
                                         "PLAIT_API_KEY": KEY}, work)
    bound_s, line = router.wait_line("PLAIT_CONTROL_PORTS=")
    ports = line.rsplit("=", 1)[1]
    pods = {}
    for pool in pools:
        run_dir = work / f"pod-{pool}"
        run_dir.mkdir()
        pods[pool] = sessions.start(entrypoint, {
            "PLAIT_ROLE": "worker", "PLAIT_AGENT_DIR": str(mount), "PLAIT_RUN_DIR": str(run_dir),
            "PLAIT_POOL_ID": pool, "PLAIT_POD_NAME": f"{NAME}-{pool}-0", "PLAIT_HEALTH_PORT": "0",
            "PLAIT_BIND": "127.0.0.1", "PLAIT_ADDRESS": "127.0.0.1", "PLAIT_ROUTER": f"{NAME}-router.default.svc:8000",
            "PLAIT_ROUTER_HOST": "127.0.0.1", "PLAIT_CONTROL_PORTS": ports, "PLAIT_NOTES": str(notes)},
            run_dir, None if cores is None else cores[pool])
    startup, line = router.wait_line("listening on ")
    url = line.split()[-1]
    loaded = {pool: round(pod.wait_line(f"worker {pool}/0 loaded")[0] + pod.started - router.started, 3)
              for pool, pod in pods.items()}
    workers = workers_of(url)
    pids = {f"{pool}/0": pod.popen.pid for pool, pod in pods.items()}
    if {k: w["pid"] for k, w in workers.items()} != pids:   # the router started none of its own
        raise RuntimeError(f"the router's workers {workers} are not the pods {pids}")
    return Deployment("attached", url, startup, workers, notes,
                      {"server_pid": router.popen.pid, "server_cores": sorted(os.sched_getaffinity(router.popen.pid)),
                       "control_ports_printed_s": round(bound_s, 3), "pods_loaded_s": loaded})


# --- the load ----------------------------------------------------------------------------------------------------

def cpu_seconds(pid: int) -> float:
    """User and system CPU time of process `pid` so far (/proc/PID/stat's utime and stime)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Phase:
    """What a phase measured per mode: its samples, the wall seconds its batches took, and the CPU seconds each
    process of the mode (the server, each worker) spent during them."""

    samples: dict[str, list[Sample]]
    wall: dict[str, float]
    cpu: dict[str, dict[str, float]]


def interleaved(deployments: list[Deployment], total: int, batch: int, threads: int, tag: str) -> Phase:
    """`total` requests to each deployment in batches of `batch`, alternating which goes first each round."""
    phase = Phase({d.mode: [] for d in deployments}, {d.mode: 0.0 for d in deployments},
                  {d.mode: dict.fromkeys(d.pids, 0.0) for d in deployments})
    sent = 0
    with ThreadPoolExecutor(threads) as pool:
        for round_ in range(-(-total // batch)):
            n = min(batch, total - sent)
            order = deployments if round_ % 2 == 0 else deployments[::-1]
            for d in order:
                texts = [f"{tag} question {sent + i}" for i in range(n)]
                cpu = {name: cpu_seconds(pid) for name, pid in d.pids.items()}
                start = time.perf_counter()
                phase.samples[d.mode] += list(pool.map(lambda t, u=d.url: invoke(u, t), texts))
                phase.wall[d.mode] += time.perf_counter() - start
                for name, pid in d.pids.items():
                    phase.cpu[d.mode][name] += cpu_seconds(pid) - cpu[name]
            sent += n
    return phase


def summary(phase: Phase, mode: str, throughput: bool) -> dict[str, Any]:
    samples = phase.samples[mode]
    ok = [s for s in samples if s.status == 200]
    steps: dict[str, list[float]] = defaultdict(list)
    for s in ok:
        for name, seconds in s.steps:
            steps[name].append(seconds)
    out: dict[str, Any] = {"requests": len(samples), "failed": len(samples) - len(ok),
                           "failures": sorted({s.status for s in samples if s.status != 200})}
    if ok:
        e2e = [s.seconds for s in ok]
        out |= {"e2e_p50_s": percentile(e2e, 0.5), "e2e_p95_s": percentile(e2e, 0.95),
                "e2e_mean_s": statistics.fmean(e2e), "server_p50_s": percentile([s.server_s for s in ok], 0.5),
                "steps_p50_s": {name: percentile(v, 0.5) for name, v in sorted(steps.items())},
                "steps_per_request": {name: len(v) / len(ok) for name, v in sorted(steps.items())}}
        out["cpu_per_request_s"] = {name: cpu / len(ok) for name, cpu in phase.cpu[mode].items()}
    if throughput:
        out["throughput_rps"] = len(ok) / phase.wall[mode]
    return out


def check_notes(d: Deployment, tool_key: str, expected: int) -> dict[str, Any]:
    """The tool's notes: one line a request, all written by this mode's tool process on a 384-dim embedding."""
    lines = d.notes.read_text().splitlines() if d.notes.exists() else []
    pid = str(d.workers[tool_key]["pid"])
    good = sum(1 for line in lines if line.split()[:2] == [pid, "384"])
    if good != expected or len(lines) != expected:
        raise RuntimeError(f"{d.mode}: the tool noted {len(lines)} requests ({good} from its process {pid} on a "
                           f"384-dim embedding), {expected} were answered")
    return {"tool_pid": int(pid), "noted": len(lines)}


# --- the report --------------------------------------------------------------------------------------------------

def rows_of(phases: dict[str, dict[str, dict[str, Any]]], startup: dict[str, float]) -> list[dict[str, Any]]:
    """One row per figure: its value per mode and attached/local."""
    rows: list[dict[str, Any]] = [{"phase": "start-up", "figure": "process start -> listening on", "unit": "s",
                                   **startup}]
    for phase, by_mode in phases.items():
        local, attached = by_mode["local"], by_mode["attached"]
        figures = [("e2e p50", "e2e_p50_s"), ("e2e p95", "e2e_p95_s"), ("server seconds p50", "server_p50_s")]
        for label, key in figures:
            rows.append({"phase": phase, "figure": label, "unit": "s", "local": local.get(key),
                         "attached": attached.get(key)})
        for step in sorted(set(local.get("steps_p50_s", {})) | set(attached.get("steps_p50_s", {}))):
            rows.append({"phase": phase, "figure": f"step {step} p50", "unit": "s",
                         "local": local.get("steps_p50_s", {}).get(step),
                         "attached": attached.get("steps_p50_s", {}).get(step)})
        for name in local.get("cpu_per_request_s", {}):
            rows.append({"phase": phase, "figure": f"CPU per request, {name} process", "unit": "s",
                         "local": local["cpu_per_request_s"][name],
                         "attached": attached.get("cpu_per_request_s", {}).get(name)})
        if "throughput_rps" in local:
            rows.append({"phase": phase, "figure": "throughput", "unit": "req/s", "local": local["throughput_rps"],
                         "attached": attached.get("throughput_rps")})
    for r in rows:
        r["ratio"] = r["attached"] / r["local"] if r.get("local") and r.get("attached") is not None else None
    return rows


def cell(v: float | None, unit: str) -> str:
    if v is None:
        return "-"
    return f"{v:.1f}" if unit == "req/s" else f"{v * 1e3:.1f} ms" if v < 1 else f"{v:.2f} s"


def table(rows: list[dict[str, Any]]) -> list[list[str]]:
    return [[r["phase"], r["figure"], cell(r["local"], r["unit"]), cell(r["attached"], r["unit"]),
             "-" if r["ratio"] is None else f"{r['ratio']:.2f}"] for r in rows]


HEADER = ["phase", "figure", "local", "attached", "attached/local"]


def show(rows: list[dict[str, Any]]) -> None:
    cells = table(rows)
    widths = [max(len(h), *(len(t[i]) for t in cells)) for i, h in enumerate(HEADER)]
    for line in [HEADER, *cells]:   # the names left, the figures right
        print("  ".join(v.ljust(w) if i < 2 else v.rjust(w) for i, (v, w) in enumerate(zip(line, widths, strict=True))))


def markers(pin: str) -> tuple[str, str]:
    return f"<!-- attached_vs_local.py --pin {pin}: begin -->", f"<!-- attached_vs_local.py --pin {pin}: end -->"


def markdown(result: dict[str, Any]) -> str:
    """The doc's table of a result (bench/results/attached_vs_local*.json): tests/test_docs_tables.py checks the
    doc shows the committed result's."""
    before, after = result["machine_before"], result["machine_after"]
    workers = "; ".join(f"{mode}: " + ", ".join(f"{k.split('-')[0]} {w['cores']}" for k, w in m["workers"].items())
                        for mode, m in result["modes"].items())
    head = (f"Measured on {result['measured_at']} with `.venv/bin/python {result['command']}` ({before['cpus']} "
            f"cores, load average {before['load_avg_1m']:.2f} before, {after['load_avg_1m']:.2f} after; workers' "
            f"cores: {workers}; {result['requests']} sequential and {result['concurrent_requests']} concurrent "
            f"requests per mode, none failed).")
    lines = ["| " + " | ".join(HEADER) + " |", "|---|---|---:|---:|---:|"]
    lines += ["| " + " | ".join(row) + " |" for row in table(result["rows"])]
    return head + "\n\n" + "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=100, help="sequential requests per mode")
    ap.add_argument("--concurrent-requests", type=int, default=None, help="requests per mode from --threads "
                                                                         "client threads (default: --requests)")
    ap.add_argument("--threads", type=int, default=4, help="client threads of the concurrent phase")
    ap.add_argument("--batch", type=int, default=10, help="requests per mode per turn, sequential phase (the "
                                                          "concurrent phase: --threads times as many)")
    ap.add_argument("--warmup", type=int, default=5, help="requests per mode before measuring")
    ap.add_argument("--pin", choices=("local", "none"), default="local",
                    help="local: each pod on the cores local mode gave its pool's worker; none: every core")
    ap.add_argument("--out", type=Path, default=None, help="the JSON (default bench/results/attached_vs_local.json; "
                                                           "with --pin none attached_vs_local_pin_none.json)")
    ap.add_argument("--doc", type=Path, default=None, help="write the table into this markdown file, between the "
                                                           "markers of --pin (docs/cluster.md has them)")
    args = ap.parse_args()
    out = args.out or ROOT / "bench" / "results" / ("attached_vs_local.json" if args.pin == "local"
                                                    else f"attached_vs_local_pin_{args.pin}.json")
    concurrent = args.requests if args.concurrent_requests is None else args.concurrent_requests
    sessions = Sessions()
    left: list[str] = []
    with tempfile.TemporaryDirectory(prefix="plait-attached-vs-local-") as tmp:
        work = Path(tmp)
        try:
            measured_at = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
            plan, mount, pools = plan_and_mount(work)
            before = machine()
            local = start_local(sessions, plan, work)   # first, alone: its start-up, and the cores it deals
            cores = None if args.pin == "none" else {k.split("/")[0]: w["cores"] for k, w in local.workers.items()}
            attached = start_attached(sessions, mount, pools, work, cores)
            both = [local, attached]
            warm = interleaved(both, args.warmup, max(1, args.warmup), 1, "warm-up")
            seq = interleaved(both, args.requests, args.batch, 1, "sequential")
            con = interleaved(both, concurrent, args.batch * args.threads, args.threads, "concurrent")
            tool = next(f"{p}/0" for p, kind in pools.items() if kind == "tool")
            answered = {d.mode: sum(s.status == 200 for p in (warm, seq, con) for s in p.samples[d.mode])
                        for d in both}
            notes = {d.mode: check_notes(d, tool, answered[d.mode]) for d in both}
            after = machine()
        finally:
            left = sessions.stop()
            if left:
                print(f"processes left after the stop: {left}", file=sys.stderr)
    phases = {"sequential": {m: summary(seq, m, False) for m in MODES},
              f"{args.threads} threads": {m: summary(con, m, True) for m in MODES}}
    rows = rows_of(phases, {"local": local.startup_s, "attached": attached.startup_s})
    show(rows)
    failed = {f"{phase} {m}": s["failed"] for phase, by in phases.items() for m, s in by.items() if s["failed"]}
    print(f"pools: {', '.join(f'{p} ({k})' for p, k in pools.items())}")
    for d in both:
        print(f"{d.mode}: server cores {d.details['server_cores']}; workers "
              + ", ".join(f"{k} pid {w['pid']} cores {w['cores']}" for k, w in d.workers.items()))
    print(f"pods pinned: {args.pin} (local: the cores local mode dealt; none: every core); "
          f"failed requests: {failed or 'none'}; processes left: {left or 'none'}")
    result = {
        "command": " ".join(["bench/attached_vs_local.py", *sys.argv[1:]]), "measured_at": measured_at, "agent": AGENT,
        "machine_before": before, "machine_after": after, "pin": args.pin, "requests": args.requests,
        "concurrent_requests": concurrent, "threads": args.threads, "batch": args.batch, "warmup": args.warmup,
        "pools": pools, "rows": rows, "phases": phases, "notes": notes, "processes_left": left,
        "modes": {d.mode: {"url": d.url, "startup_s": d.startup_s, "workers": d.workers, **d.details} for d in both},
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    if args.doc is not None and not (left or failed):
        write_doc(args.doc, markdown(result), *markers(args.pin))
        print(f"wrote the table into {args.doc}")
    if left or failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
