"""Shared by the engine benchmarks: the 100M-parameter model they run, thread settings, and timing."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from plait.codegen.engine import ModelConfig

RESULTS = Path(__file__).resolve().parent / "results"

# Llama-shaped, ~125M parameters (12 layers of width 768, GQA 12/4 heads, vocab 32k, untied): the smallest
# size issue 13 allows for these benchmarks. Random weights: the tokens are noise; only the speed counts.
BENCH_MODEL = ModelConfig(arch="llama", vocab_size=32000, hidden_size=768, intermediate_size=2048, num_layers=12,
                          num_heads=12, num_kv_heads=4, head_dim=64, max_position_embeddings=16384,
                          rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                        "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
                          rope_theta=500000.0, name="bench-llama-125m")


def set_threads() -> int:
    """One intra-op thread unless PLAIT_BENCH_THREADS says otherwise: the development machines' two cores
    are shared, and with two threads every op waits for the busier core (a 16 MB copy measured 8x slower)."""
    threads = int(os.environ.get("PLAIT_BENCH_THREADS", "1"))
    torch.set_num_threads(threads)
    return threads


# One thread's CPU time, not wall time, unless PLAIT_BENCH_CLOCK=wall: on the shared 2-core machines other
# tenants' processes take the core away for whole slices, which wall time counts and CPU time does not. On an
# idle core the two agree (tokens per CPU second = tokens per second).
CLOCK = os.environ.get("PLAIT_BENCH_CLOCK", "cpu")
CLOCK_NOTE = "timed in process CPU time" if CLOCK == "cpu" else "timed in wall time"


def seconds_of(fn: Callable[[], Any]) -> float:
    clock = time.process_time if CLOCK == "cpu" else time.perf_counter
    start = clock()
    fn()
    return clock() - start


def best_seconds(fn: Callable[[], Any], reps: int = 5, warm: int = 1) -> float:
    """Minimum time of fn() in seconds after warm-up: the least disturbed run."""
    return best_seconds_alternating([fn], reps=reps, warm=warm)[0]


def best_seconds_alternating(fns: list[Callable[[], Any]], reps: int = 3, warm: int = 1) -> list[float]:
    """Minimum time of each fn, running them in turn rep after rep (after warm-up), so that a change in the
    machine's load between two measurements hits both alike."""
    for _ in range(warm):
        for fn in fns:
            fn()
    best = [float("inf")] * len(fns)
    for _ in range(reps):
        for i, fn in enumerate(fns):
            best[i] = min(best[i], seconds_of(fn))
    return best


def model_payload(prompt_tokens: int, new_tokens: int, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The JSON body the throughput benchmarks share: which model, that its weights are random, the rows."""
    return {"model": BENCH_MODEL.name, "params": BENCH_MODEL.n_params(), "random_weights": True,
            "prompt_tokens": prompt_tokens, "new_tokens": new_tokens, "rows": rows}


def write_results(name: str, payload: dict[str, Any]) -> Path:
    out = RESULTS / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    env = {"torch": torch.__version__, "threads": torch.get_num_threads(), "cores": os.cpu_count(),
           "clock": "process CPU time" if CLOCK == "cpu" else "wall", "load_average": os.getloadavg()}
    out.write_text(json.dumps({"env": env, **payload}, indent=2) + "\n")
    print(f"wrote {out}")
    return out
