"""Dispatch cost per hop: a chain of no-op tool steps alternating between two worker processes, through plait's
driver and workers, against Ray actor tasks and a Ray compiled graph doing the same chain, in one run.

Run: .venv/bin/python bench/dispatch_hop.py [--hops 100] [--requests 30] [--no-ray]
(Ray is the `bench` extra: `.venv/bin/pip install -c constraints.txt -e '.[bench]'`; without it the Ray rows
are left out and the JSON says why.) Prints a table and writes bench/results/dispatch_hop.json.

What runs:
- plait: bench/agents/chain.py:chain100 traced, planned, its ping and pong call sites merged into two tool
  pools (bench/_runtime_common.plan_grouped), run by scheduler.local.LocalRun: the driver interprets the graph
  (it would run loops and branches the same way) and sends each step to its worker over ZeroMQ; the worker
  acknowledges, runs the tool and answers. Every hop crosses a process.
- Ray tasks, one get per hop: two actors; the driver calls one, waits for the value, calls the other (the
  driver decides each step, as plait's does).
- Ray tasks, refs chained: the same calls, each taking the previous call's ObjectRef; one get at the end.
- Ray compiled graph: the 100 calls bound into one DAG over the two actors and `experimental_compile`d
  (static: no loops or branches), executed once per request.
- ZeroMQ alone (the floor under plait's transport): the driver process sends a message to one of two echo
  processes (a DEALER each, one thread, no plait) and waits for it to come back, 100 times in turn.

Per hop = a request's end-to-end time / hops; p50 and p95 over the requests (nearest rank). The ratio is to
the Ray compiled graph's figure (below 1: plait is faster).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _runtime_common import ROOT, machine, percentile, plan_grouped, print_table

HERE = Path(__file__).resolve().parent
AGENTS = {10: "bench/agents/chain.py:chain10", 100: "bench/agents/chain.py:chain100"}


def timed(chain: Callable[[], Any], hops: int, requests: int, warmup: int) -> list[float]:
    """Per-hop microseconds of each of `requests` runs of `chain` (after `warmup` runs), checking its answer."""
    for _ in range(warmup):
        chain()
    out = []
    for _ in range(requests):
        start = time.perf_counter()
        got = chain()
        out.append((time.perf_counter() - start) / hops * 1e6)
        if got != hops:   # each step adds one: a lost or repeated step would show
            raise RuntimeError(f"the chain returned {got!r}, not {hops}")
    return out


def plait_rows(hops: int, requests: int, warmup: int) -> list[dict[str, Any]]:
    from plait.scheduler.driver import Figures
    from plait.scheduler.local import LocalRun

    graph, programs = plan_grouped(AGENTS[hops], {"ping": "ping", "pong": "pong"})
    assert len(programs) == 2, [p.pool.id for p in programs]
    with tempfile.TemporaryDirectory() as run_dir, LocalRun(graph, programs, Path(run_dir), Figures()) as run:
        steps: list[float] = []

        def chain() -> Any:
            record = run.driver.run({"x": 0})
            if record.error is not None:
                raise RuntimeError(record.error)
            steps.extend(s * 1e6 for _, s in record.steps)
            return record.output

        per_hop = timed(chain, hops, requests, warmup)
        steps = steps[warmup * hops:]
    return [row("plait (driver + 2 worker processes)", per_hop),
            row("  of which one step, driver send to answer", steps)]


def _echo(endpoint: str) -> None:
    """An echo process for the ZeroMQ floor: send back every frame until an empty one."""
    import zmq

    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.connect(endpoint)
    sock.send(b"hello")
    while frame := sock.recv():
        sock.send(frame)
    sock.close()
    ctx.term()


def zmq_rows(hops: int, requests: int, warmup: int) -> list[dict[str, Any]]:
    import multiprocessing as mp

    import zmq

    ctx = zmq.Context()
    router = ctx.socket(zmq.ROUTER)
    router.bind("tcp://127.0.0.1:*")
    endpoint = str(router.getsockopt_string(zmq.LAST_ENDPOINT))
    procs = [mp.get_context("spawn").Process(target=_echo, args=(endpoint,), daemon=True) for _ in range(2)]
    for p in procs:
        p.start()
    peers = [router.recv_multipart()[0] for _ in procs]
    order = [peers[i % 2] for i in range(hops)]

    def chain() -> int:
        x = 0
        for peer in order:
            router.send_multipart([peer, x.to_bytes(8, "little")])
            x = int.from_bytes(router.recv_multipart()[1], "little") + 1
        return x

    try:
        rows = [row("ZeroMQ round trips alone (no plait)", timed(chain, hops, requests, warmup))]
    finally:
        for peer in peers:
            router.send_multipart([peer, b""])
        for p in procs:
            p.join(5)
        router.close(0)
        ctx.term()
    return rows


def ray_rows(hops: int, requests: int, warmup: int) -> list[dict[str, Any]]:
    import ray
    from ray.dag import InputNode

    @ray.remote(num_cpus=0)
    class Hop:
        def step(self, x: int) -> int:
            return x + 1

    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=128 << 20, log_to_driver=False,
             configure_logging=False)
    try:
        a, b = Hop.remote(), Hop.remote()   # type: ignore[attr-defined]
        ray.get([a.step.remote(0), b.step.remote(0)])
        actors = [a if i % 2 == 0 else b for i in range(hops)]

        def get_each() -> int:
            x = 0
            for actor in actors:
                x = ray.get(actor.step.remote(x))
            return x

        def chained() -> int:
            x: Any = 0
            for actor in actors:
                x = actor.step.remote(x)
            return int(ray.get(x))

        with InputNode() as inp:
            node = inp
            for actor in actors:
                node = actor.step.bind(node)
        dag = node.experimental_compile()
        try:
            rows = [row("Ray tasks, one get per hop", timed(get_each, hops, requests, warmup)),
                    row("Ray tasks, refs chained", timed(chained, hops, requests, warmup)),
                    row("Ray compiled graph", timed(lambda: ray.get(dag.execute(0)), hops, requests, warmup))]
        finally:
            dag.teardown()
    finally:
        ray.shutdown()
    return rows


def row(name: str, per_hop_us: list[float]) -> dict[str, Any]:
    return {"name": name, "samples": len(per_hop_us), "p50_us": round(percentile(per_hop_us, 0.50), 1),
            "p95_us": round(percentile(per_hop_us, 0.95), 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hops", type=int, default=100, choices=sorted(AGENTS))
    ap.add_argument("--requests", type=int, default=30, help="timed chains per system")
    ap.add_argument("--warmup", type=int, default=3, help="untimed chains first")
    ap.add_argument("--no-ray", action="store_true", help="leave the Ray rows out")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "dispatch_hop.json")
    args = ap.parse_args()
    rows = plait_rows(args.hops, args.requests, args.warmup) + zmq_rows(args.hops, args.requests, args.warmup)
    ray_version, ray_note = None, None
    if args.no_ray:
        ray_note = "--no-ray"
    else:
        try:
            import ray
        except ImportError:
            ray_note = "ray is not installed (the bench extra: pip install -e '.[bench]')"
        else:
            ray_version = ray.__version__
            rows += ray_rows(args.hops, args.requests, args.warmup)
    anchor = next((r for r in rows if r["name"] == "Ray compiled graph"), None)
    for r in rows:
        r["vs_compiled_graph_p50"] = round(r["p50_us"] / anchor["p50_us"], 2) if anchor else None
        r["vs_compiled_graph_p95"] = round(r["p95_us"] / anchor["p95_us"], 2) if anchor else None
    command = " ".join(["python bench/dispatch_hop.py", *sys.argv[1:]])
    print(f"dispatch per hop, {args.hops}-step chain alternating between two worker processes, "
          f"{args.requests} requests each (us)")
    print_table(["", "p50", "p95", "p50 / compiled graph", "p95 / compiled graph"],
                [[r["name"], f"{r['p50_us']:.0f}", f"{r['p95_us']:.0f}",
                  "-" if r["vs_compiled_graph_p50"] is None else f"{r['vs_compiled_graph_p50']:.2f}",
                  "-" if r["vs_compiled_graph_p95"] is None else f"{r['vs_compiled_graph_p95']:.2f}"] for r in rows])
    if ray_note:
        print(f"Ray rows left out: {ray_note}")
    info = machine()
    print(f"on {info['cpus']} cores, load average {info['load_avg_1m']:.2f} at the end")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"command": command, "hops": args.hops, "requests": args.requests,
                                    "ray": ray_version, "ray_left_out": ray_note, "machine": info, "rows": rows},
                                   indent=2) + "\n")
    print(f"wrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")


if __name__ == "__main__":
    main()
