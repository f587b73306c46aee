"""Time this machine's CPU kernels with torch: GEMMs, a memory copy and the per-op launch overhead.

`plait calibrate --cpu` turns these rows into the `local` device (planner/calibration.py `local_device`);
bench/cpu_timings.py records them, with a tiny model's forward, for the CPU factor fit. Rows are dicts in the
format of planner/data/cpu_timings.jsonl (`section`: env, launch, gemm, copy), so one reader takes both.
"""

from __future__ import annotations

import os
import platform
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

GEMM_SHAPES: tuple[tuple[int, int, int], ...] = (
    (1, 2048, 2048), (16, 2048, 2048), (128, 2048, 2048), (512, 2048, 2048), (1024, 1024, 1024), (2048, 2048, 2048))
"""(m, n, k): the decode shape (m=1: one token, bandwidth-bound), small batches, and prefill shapes."""
COPY_BYTES = 64 << 20
"""A copy this large leaves the caches: it streams from and to memory."""


def wall_ms(fn: Callable[[], Any], reps: int = 7, warm: int = 2, budget_s: float = 2.0) -> float:
    """Minimum wall time of fn() in ms over `reps` runs (fewer once `budget_s` is spent): the machine may be
    shared, and the minimum is the least disturbed."""
    for _ in range(warm):
        fn()
    ts: list[float] = []
    start = time.perf_counter()
    while len(ts) < reps and (len(ts) < 2 or time.perf_counter() - start < budget_s):
        t = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t) * 1e3)
    return min(ts)


def usable_cores() -> int:
    """The cores this process may run on (its affinity: what `plait run` deals out to workers)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def memory_bytes() -> int:
    """Physical memory: /proc/meminfo's MemTotal, else sysconf."""
    meminfo = Path("/proc/meminfo")
    if meminfo.exists() and (m := re.search(r"MemTotal:\s*(\d+) kB", meminfo.read_text())):
        return int(m.group(1)) * 1024
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def cpu_env() -> dict[str, Any]:
    """Model, vendor, cores, clock, memory and assumed FLOP/cycle of this machine (/proc/cpuinfo and meminfo)."""
    import torch

    path = Path("/proc/cpuinfo")
    info = path.read_text() if path.exists() else ""

    def field(name: str) -> str | None:
        m = re.search(rf"{name}\s*:\s*(.*)", info)
        return m.group(1).strip() if m else None

    flags = set((field("flags") or "").split())
    # fp32 FLOP per cycle per core: 2 FMA pipes x vector width x 2. AVX-512: 64; AVX2 + FMA: 32; else 8.
    # An assumption (the same rule as hardware.md's CPU peaks), stated in the output.
    fpc = 64 if "avx512f" in flags else 32 if "fma" in flags else 8
    mhz = field("cpu MHz")
    vendor = {"AuthenticAMD": "amd", "GenuineIntel": "intel"}.get(field("vendor_id") or "", platform.machine())
    return {"cpu": field("model name") or platform.processor() or platform.machine(), "vendor": vendor,
            "threads": torch.get_num_threads(), "cores": usable_cores(),
            "ghz": round(float(mhz) / 1000, 3) if mhz else None, "mem_bytes": memory_bytes(),
            "fp32_flops_per_cycle": fpc, "flops_per_cycle_note": "assumed from the CPU flags, not measured",
            "torch": torch.__version__}


def launch_row(ops: int = 20000) -> dict[str, Any]:
    """Host time of one tiny eager op (an in-place add on one element): the per-op overhead a model pays."""
    import torch

    x = torch.zeros(1)
    for _ in range(100):
        x.add_(1)
    t = time.perf_counter()
    for _ in range(ops):
        x.add_(1)
    return {"section": "launch", "eager_tiny_op_us": round((time.perf_counter() - t) / ops * 1e6, 3)}


def gemm_rows(shapes: tuple[tuple[int, int, int], ...] = GEMM_SHAPES, reps: int = 7) -> list[dict[str, Any]]:
    """fp32 a @ b at each (m, n, k): minimum time and the FLOP/s it reached."""
    import torch

    rows = []
    for m, n, k in shapes:
        a, b = torch.randn(m, k), torch.randn(k, n)

        def gemm(a: torch.Tensor = a, b: torch.Tensor = b) -> torch.Tensor:
            return a @ b

        ms = wall_ms(gemm, reps=reps)
        rows.append({"section": "gemm", "dtype": "fp32", "m": m, "n": n, "k": k, "ms": round(ms, 4),
                     "gflops": round(2 * m * n * k / ms / 1e6, 2)})
    return rows


def copy_row(nbytes: int = COPY_BYTES, reps: int = 7) -> dict[str, Any]:
    """One memory-to-memory copy of `nbytes`: GB/s counting the read and the write."""
    import torch

    src = torch.ones(nbytes, dtype=torch.uint8)
    dst = torch.empty_like(src)
    ms = wall_ms(lambda: dst.copy_(src), reps=reps)
    return {"section": "copy", "kind": "d2d", "bytes": nbytes, "ms": round(ms, 3),
            "gbps_rw": round(2 * nbytes / ms / 1e6, 2)}


def kernel_rows(reps: int = 7) -> list[dict[str, Any]]:
    """env, launch, gemm and copy rows, all threads of this process in use (as a whole-machine replica)."""
    import torch

    torch.manual_seed(0)
    torch.set_num_threads(usable_cores())
    return [{"section": "env", **cpu_env()}, launch_row(), *gemm_rows(reps=reps), copy_row(reps=reps)]


ENGINE_MODEL = "llama-3.1-8b@tiny"
ENGINE_CTX = 256


def engine_step_row(model: str = ENGINE_MODEL, ctx: int = ENGINE_CTX, reps: int = 15) -> dict[str, Any]:
    """One decode step of plait's own LLM engine (random weights, one sequence at `ctx` tokens of context): what a
    step costs beyond its kernels (the scheduler, sampling, the paged KV gather), which the per-op figures miss."""
    import torch

    from plait.codegen.engine import SamplingParams
    from plait.codegen.llm import build_engine

    engine = build_engine(model)
    prompt = torch.randint(0, 256, (ctx,), generator=torch.Generator().manual_seed(0)).tolist()
    engine.add_request(prompt, SamplingParams(max_tokens=reps + 4, ignore_eos=True))
    engine.step()   # the prefill: not timed
    ms = wall_ms(lambda: engine.step(), reps=reps, warm=1)
    return {"section": "engine", "model": model, "batch": 1, "ctx": ctx, "ms": round(ms, 4)}
