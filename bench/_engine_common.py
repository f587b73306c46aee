"""Shared by the engine benchmarks: the 100M-parameter model they run, thread settings, and timing."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from cpu_timings import wall_ms

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


def best_seconds(fn: Callable[[], Any], reps: int = 5, warm: int = 1) -> float:
    """Minimum wall time of fn() in seconds after warm-up: the least disturbed run on a shared machine."""
    return wall_ms(fn, reps=reps, warm=warm) / 1e3


def model_payload(prompt_tokens: int, new_tokens: int, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The JSON body the throughput benchmarks share: which model, that its weights are random, the rows."""
    return {"model": BENCH_MODEL.name, "params": BENCH_MODEL.n_params(), "random_weights": True,
            "prompt_tokens": prompt_tokens, "new_tokens": new_tokens, "rows": rows}


def write_results(name: str, payload: dict[str, Any]) -> Path:
    out = RESULTS / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    env = {"torch": torch.__version__, "threads": torch.get_num_threads(), "cores": os.cpu_count()}
    out.write_text(json.dumps({"env": env, **payload}, indent=2) + "\n")
    print(f"wrote {out}")
    return out
