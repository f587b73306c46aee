"""The engine on a GPU: prefill at 512 and 2,048 tokens, decode eager and from CUDA graphs at batch 1, 16 and 64.

Runs where only torch is installed (a lent GPU machine: Python 3.12, torch, nothing else, no network): it
imports plait.codegen.engine straight from this checkout through a stub `plait` package, so neither plait's
other layers nor their dependencies (pydantic, xdsl, numpy, tokenizers, safetensors) are imported.
llama-3.1-8b-shaped random weights are drawn on the GPU itself, in bf16. Raw JSON goes to $OUT (or
./gpu-results)/gpu_check.json; bench/gpu_compare.py sets it beside the cost model.

A prefill row is one step computing one whole prompt; a decode row is the median of `steps` decode-only steps
of `batch` sequences at `context` tokens of KV (imported as random values: the speed is the same), after
warm-up steps (which capture the graphs). `--cpu-smoke` runs a tiny model on the CPU in seconds with the
same schema ("static" stands in for "graph": the graphs' padded shapes, run eagerly), so the script is
tested where no GPU is. Stops measuring after --budget-s seconds and lists what it skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import types
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
FORMAT = "plait-gpu-check/1"


def import_engine() -> types.ModuleType:
    """plait.codegen.engine from this checkout, with stub parents: the real plait/__init__ loads the SDK
    (pydantic) and plait.codegen's loads the device programs (xdsl), neither of which a GPU machine has."""
    if "plait.codegen.engine" in sys.modules:
        return sys.modules["plait.codegen.engine"]
    for name, path in (("plait", ROOT / "plait"), ("plait.codegen", ROOT / "codegen")):
        if name not in sys.modules:
            stub = types.ModuleType(name)
            stub.__path__ = [str(path)]
            sys.modules[name] = stub
    import plait.codegen.engine as engine
    return engine


# llama-3.1-8b's shape (the catalog's; written out here since the catalog needs pydantic).
LLAMA_8B = dict(arch="llama", vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_layers=32,
                num_heads=32, num_kv_heads=8, head_dim=128, rope_theta=500000.0, rms_norm_eps=1e-5,
                rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                              "original_max_position_embeddings": 8192},
                max_position_embeddings=131072, eos_token_ids=(128001,), name="llama-3.1-8b")
# The smoke model: llama-3.1-8b@tiny's dims with a smaller vocabulary, seconds on two CPU cores.
TINY = dict(LLAMA_8B, vocab_size=512, hidden_size=256, intermediate_size=896, num_layers=4, num_heads=8,
            num_kv_heads=2, head_dim=32, max_position_embeddings=4096, eos_token_ids=(256,), name="llama-3.1-8b@tiny")

FULL = {"prefill": [512, 2048], "batches": [1, 16, 64], "context": 512, "warm": 3, "steps": 20,
        "modes": ["eager", "graph"]}
SMOKE = {"prefill": [32, 64], "batches": [1, 4], "context": 32, "warm": 1, "steps": 3, "modes": ["eager", "static"]}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_prefill(eng: Any, model: Any, config: Any, tokens: int, device: torch.device, reps: int = 3) -> dict:
    engine = eng.LLMEngine(model, config, max_batch=1, token_budget=tokens, enable_prefix_reuse=False,
                           num_blocks=tokens // 16 + 2, decode_graphs="eager")
    gen = torch.Generator().manual_seed(tokens)
    times = []
    for _ in range(reps + 1):  # the first is warm-up (kernel selection, allocator)
        prompt = torch.randint(0, config.vocab_size, (tokens,), generator=gen).tolist()
        engine.add_request(prompt, eng.SamplingParams(max_tokens=1))
        sync(device)
        start = time.perf_counter()
        assert len(engine.step()) == 1  # the whole prompt in one step
        sync(device)
        times.append((time.perf_counter() - start) * 1e3)
    ms = times[1:]
    return {"tokens": tokens, "batch": 1, "ms": ms, "ms_min": min(ms), "ms_median": statistics.median(ms),
            "tokens_per_s": tokens / (min(ms) / 1e3)}


def measure_decode(eng: Any, model: Any, config: Any, batch: int, context: int, mode: str, warm: int, steps: int,
                   device: torch.device, dtype: torch.dtype) -> dict:
    blocks_each = -(-(context + warm + steps + 2) // 16)
    engine = eng.LLMEngine(model, config, role="decode", max_batch=batch, num_blocks=batch * blocks_each,
                           decode_graphs=mode)
    kv = torch.randn(config.num_layers, context, config.num_kv_heads, config.head_dim, device=device, dtype=dtype)
    header = {"format": "plait-kv/1", "model": config.name, "arch": config.arch, "num_layers": config.num_layers,
              "num_kv_heads": config.num_kv_heads, "head_dim": config.head_dim,
              "dtype": str(dtype).removeprefix("torch."), "length": context, "token_ids": list(range(context + 1)),
              "num_prompt_tokens": context, "tp_size": 1}
    for _ in range(batch):
        engine.import_kv(header, {"k": kv, "v": kv}, eng.SamplingParams(max_tokens=warm + steps + 1, ignore_eos=True))
    times = []
    for i in range(warm + steps):
        sync(device)
        start = time.perf_counter()
        assert len(engine.step()) == batch
        sync(device)
        if i >= warm:
            times.append((time.perf_counter() - start) * 1e3)
    graphs = engine.runner.graphs
    median = statistics.median(times)
    row = {"batch": batch, "context": context, "mode": mode, "steps": steps, "ms": times, "ms_median": median,
           "ms_min": min(times), "tokens_per_s": batch / (median / 1e3),
           "graph_steps": graphs.steps if graphs else 0, "captures": graphs.captures if graphs else 0}
    del engine, kv
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return row


def main(argv: list[str] | None = None) -> Path:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cpu-smoke", action="store_true", help="tiny model on the CPU, a few seconds (tests)")
    ap.add_argument("--out", default=os.environ.get("OUT") or "gpu-results", help="folder for gpu_check.json")
    ap.add_argument("--budget-s", type=float, default=220.0, help="stop measuring after this many seconds")
    args = ap.parse_args(argv)
    began = time.perf_counter()
    eng = import_engine()
    smoke = args.cpu_smoke
    if not smoke and not torch.cuda.is_available():
        raise SystemExit("gpu_check: torch sees no CUDA device. To fix: run it on a GPU machine, or pass "
                         "--cpu-smoke for the tiny CPU run")
    device = torch.device("cpu" if smoke else "cuda")
    dtype = torch.float32 if smoke else torch.bfloat16
    plan = SMOKE if smoke else FULL
    config = eng.ModelConfig(**(TINY if smoke else LLAMA_8B))
    torch.manual_seed(0)
    if smoke:
        torch.set_num_threads(1)
    start = time.perf_counter()
    from plait.codegen.engine.weights import random_model_on_device
    model = random_model_on_device(config, device, dtype=dtype, seed=0)
    sync(device)
    build_s = time.perf_counter() - start
    out: dict[str, Any] = {
        "format": FORMAT, "smoke": smoke,
        "note": ("CPU SMOKE SAMPLE: a tiny model on a CPU, run to test the script and its schema; NOT a GPU "
                 "measurement") if smoke else "measured on a GPU with random llama-3.1-8b-shaped weights",
        "device": {"name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
                   "torch": torch.__version__, "cuda": torch.version.cuda,
                   "python": sys.version.split()[0]},
        "model": {"name": config.name, "params": config.n_params(), "dtype": str(dtype).removeprefix("torch."),
                  "random_weights": True, "build_s": build_s},
        "prefill": [], "decode": [], "skipped": []}

    def within_budget(what: str) -> bool:
        if time.perf_counter() - began > args.budget_s:
            out["skipped"].append(what)
            return False
        return True

    for tokens in plan["prefill"]:
        if within_budget(f"prefill {tokens}"):
            out["prefill"].append(measure_prefill(eng, model, config, tokens, device))
    for batch in plan["batches"]:
        for mode in plan["modes"]:
            if within_budget(f"decode batch {batch} {mode}"):
                out["decode"].append(measure_decode(eng, model, config, batch, plan["context"], mode, plan["warm"],
                                                    plan["steps"], device, dtype))
    out["elapsed_s"] = time.perf_counter() - began
    folder = Path(args.out)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "gpu_check.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    for r in out["prefill"]:
        print(f"prefill {r['tokens']:>5} tokens: {r['ms_min']:8.2f} ms  ({r['tokens_per_s']:,.0f} tokens/s)")
    for r in out["decode"]:
        print(f"decode  batch {r['batch']:>3} {r['mode']:<6} ctx {r['context']}: {r['ms_median']:8.2f} ms/step "
              f"({r['tokens_per_s']:,.0f} tokens/s, {r['captures']} graphs)")
    print(f"wrote {path} in {out['elapsed_s']:.1f} s" + (f"; skipped {out['skipped']}" if out["skipped"] else ""))
    return path


if __name__ == "__main__":
    main()
