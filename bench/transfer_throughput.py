"""Tensor transfer throughput between two worker processes, 1 KB to 256 MB: plait's transfer path against raw
torch.distributed send/recv between the same two processes, side by side in one run.

Run: .venv/bin/python bench/transfer_throughput.py [--max-mb 256] [--reps 10]
Prints a table and writes bench/results/transfer_throughput.json.

Both sides run in the same two plait workers (bench/agents/transfer.py, planned onto two tool pools by
bench/_runtime_common.plan_grouped and run by scheduler.local.LocalRun):
- plait: a tensor made by `make` on worker A moves to worker B as the runtime moves any tensor
  (Driver._move): the driver sends Send to A and Recv, carrying shape and dtype, to B over ZeroMQ; each
  acknowledges; the edge's two-rank ProcessGroupGloo (on a PrefixStore of the driver's TCPStore, made on first
  use) moves the bytes; B allocates the tensor, keeps it, and both answer Done. Timed at the driver, from the
  first control message to the second Done: control messages included.
- raw: tools on the same two workers join one default torch.distributed Gloo group (on this bench's own
  TCPStore) and time dist.send / dist.recv of the same size at the receiver, each from a barrier both leave
  together, into one preallocated buffer (raw's best case: no control messages, no allocation).
The two take turns, one transfer each, so that both see the same load on a shared machine.

GB/s = bytes / median seconds (1 GB = 1e9 bytes); ratio = plait's GB/s / raw's (goal: >= 0.95 from 1 MB).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from _runtime_common import ROOT, machine, percentile, plan_grouped, print_table

HERE = Path(__file__).resolve().parent
AGENT = "bench/agents/transfer.py:pair"
GROUPS = {"make": "a", "raw_send": "a", "received": "b", "raw_recv": "b", "summary": "b"}


def sizes_up_to(max_bytes: int, min_bytes: int = 1 << 10) -> list[int]:
    out, n = [], min_bytes
    while n <= max_bytes:
        out.append(n)
        n *= 4
    return out


def reps_for(nbytes: int, reps: int) -> int:
    """More repetitions of the small sizes (their medians are noisy on a shared machine), fewer of the largest
    (a 256 MB transfer takes ~0.1-0.5 s here)."""
    return 3 * reps if nbytes <= 1 << 20 else reps if nbytes <= 16 << 20 else max(3, reps // 2)


class Bench:
    """The two workers, the driver over them, and the steps of bench/agents/transfer.py by name."""

    def __init__(self, run: Any) -> None:
        import torch.distributed as dist

        self.run, self.driver = run, run.driver
        self.nodes = {n.target: n for n in self.driver.graph.steps if n.kind == "tool"}
        self.requests = iter(range(1_000_000, 2_000_000))   # request ids of their own: released after each use
        self.store = dist.TCPStore("127.0.0.1", 0, is_master=True, wait_for_workers=False)   # raw's rendezvous

    def call(self, tool: str, args: list[Any], request: int) -> Any:
        from plait.scheduler.driver import Record

        return self.driver._leaf(self.nodes[tool], args, Record(request=request))

    def plait_move(self, ref: Any, to: str, check: bool = False) -> float:
        """Seconds of one move of `ref` to worker `to`, as the driver moves any tensor; the copy is released."""
        from plait.scheduler.driver import Record

        rec = Record(request=next(self.requests))
        moved = self.driver._move(ref, to, rec)
        if check:   # the tensor arrived whole
            got = self.driver._leaf(self.nodes["received"], [moved], rec)
            if got != ref.shape[0]:
                raise RuntimeError(f"plait moved {got} of {ref.shape[0]} bytes")
        self.run.workers.release(rec.request)
        return next(s for name, s in rec.steps if name.startswith("transfer"))

    def raw(self, nbytes: int, reps: int) -> list[float]:
        """raw_send on worker A and raw_recv on worker B at once; the receiver's seconds per transfer."""
        out: dict[str, Any] = {}

        def side(tool: str) -> None:
            try:
                out[tool] = self.call(tool, [self.store.port, nbytes, reps], next(self.requests))
            except Exception as err:
                out[tool] = err

        threads = [threading.Thread(target=side, args=(t,)) for t in ("raw_send", "raw_recv")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for tool in ("raw_send", "raw_recv"):
            if isinstance(out[tool], Exception):
                raise RuntimeError(f"{tool}: {out[tool]}")
        return list(out["raw_recv"])

    def size(self, nbytes: int, reps: int, warmup: int = 2) -> tuple[list[float], list[float]]:
        """(plait's seconds, raw's seconds) of `reps` transfers of `nbytes` each, taken in turns (one of
        plait's, one of raw's) so that both see the same load on this shared machine."""
        maker = next(self.requests)
        ref = self.call("make", [nbytes], maker)
        to = self.driver.pools[id(self.nodes["received"])] + "/0"
        for i in range(warmup):   # the edge's Gloo pair and the raw group are made here, buffers faulted in
            self.plait_move(ref, to, check=i == 0)
        self.raw(nbytes, warmup)
        plait_s, raw_s = [], []
        for _ in range(reps):
            plait_s.append(self.plait_move(ref, to))
            raw_s += self.raw(nbytes, 1)
        self.run.workers.release(maker)
        return plait_s, raw_s


def measure(max_bytes: int, reps: int, min_bytes: int = 1 << 10) -> list[dict[str, Any]]:
    from plait.scheduler.driver import Figures
    from plait.scheduler.local import LocalRun

    graph, programs = plan_grouped(AGENT, GROUPS)
    assert len(programs) == 2, [p.pool.id for p in programs]
    rows = []
    with tempfile.TemporaryDirectory() as run_dir, LocalRun(graph, programs, Path(run_dir), Figures()) as run:
        bench = Bench(run)
        for nbytes in sizes_up_to(max_bytes, min_bytes):
            n = reps_for(nbytes, reps)
            plait_s, raw_s = bench.size(nbytes, n)
            plait_gbs, raw_gbs = nbytes / statistics.median(plait_s) / 1e9, nbytes / statistics.median(raw_s) / 1e9
            rows.append({"bytes": nbytes, "reps": n,
                         "plait_median_us": round(statistics.median(plait_s) * 1e6, 1),
                         "plait_p95_us": round(percentile(plait_s, 0.95) * 1e6, 1),
                         "raw_median_us": round(statistics.median(raw_s) * 1e6, 1),
                         "raw_p95_us": round(percentile(raw_s, 0.95) * 1e6, 1),
                         "plait_gb_s": round(plait_gbs, 4), "raw_gb_s": round(raw_gbs, 4),
                         "ratio": round(plait_gbs / raw_gbs, 3)})
    return rows


def size_label(nbytes: int) -> str:
    for unit, scale in (("MB", 1 << 20), ("KB", 1 << 10)):
        if nbytes >= scale:
            return f"{nbytes // scale} {unit}"
    return f"{nbytes} B"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--max-mb", type=float, default=256, help="largest size (sizes go up by 4x from --min-kb)")
    ap.add_argument("--min-kb", type=float, default=1, help="smallest size")
    ap.add_argument("--reps", type=int, default=10, help="timed transfers per size (3x up to 1 MB, half from 64 MB)")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "transfer_throughput.json")
    args = ap.parse_args()
    rows = measure(int(args.max_mb * (1 << 20)), args.reps, int(args.min_kb * (1 << 10)))
    print("transfer throughput between two worker processes (Gloo over loopback), median of the reps")
    print_table(["size", "plait us", "raw us", "plait GB/s", "raw GB/s", "plait / raw"],
                [[size_label(r["bytes"]), f"{r['plait_median_us']:.0f}", f"{r['raw_median_us']:.0f}",
                  f"{r['plait_gb_s']:.3f}", f"{r['raw_gb_s']:.3f}", f"{r['ratio']:.2f}"] for r in rows])
    big = [r["ratio"] for r in rows if r["bytes"] >= 1 << 20]
    if big:
        print(f"from 1 MB up: plait at {min(big):.0%} to {max(big):.0%} of raw torch.distributed (goal >= 95%)")
    info = machine()
    print(f"on {info['cpus']} cores, load average {info['load_avg_1m']:.2f} at the end")
    command = " ".join(["python bench/transfer_throughput.py", *sys.argv[1:]])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"command": command, "machine": info, "rows": rows,
                                    "min_ratio_from_1mb": min(big) if big else None}, indent=2) + "\n")
    print(f"wrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")


if __name__ == "__main__":
    main()
