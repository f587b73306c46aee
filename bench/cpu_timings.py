"""Time this machine's CPU (gemm, copy, launch overhead, a tiny Llama-shaped forward) for the CPU fit.

Writes JSON lines to planner/data/cpu_timings.jsonl (checked in; `plait cost --fit-report` fits the
CPU efficiency factors from it) and prints a table. Run: `.venv/bin/python bench/cpu_timings.py`.
The rows mirror ../shared/calibration/measure_gpu.py so one fitting code path reads both.
"""

from __future__ import annotations

import json
import os
import platform
import re
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

OUT = Path(__file__).resolve().parents[1] / "planner" / "data" / "cpu_timings.jsonl"
TINY = {"name": "tiny-llama", "d_model": 512, "layers": 4, "heads": 8, "kv_heads": 2, "ffn": 1536,
        "vocab": 8192}


def wall_ms(fn: Any, reps: int = 7, warm: int = 2) -> float:
    """Minimum wall time of fn() in ms: the machine may be shared, and the minimum is the least disturbed."""
    for _ in range(warm):
        fn()
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t) * 1e3)
    return min(ts)


def cpu_env() -> dict[str, Any]:
    """Core count, clock and FLOP/cycle of this machine (from /proc/cpuinfo; FLOP/cycle is assumed)."""
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = re.search(r"model name\s*:\s*(.*)", info)
    mhz = re.search(r"cpu MHz\s*:\s*([\d.]+)", info)
    flags = set((re.search(r"flags\s*:\s*(.*)", info) or re.search("(.*)", "")).group(1).split())
    # fp32 FLOP per cycle per core: 2 FMA pipes x vector width x 2. AVX-512: 64; AVX2 + FMA: 32; else 8.
    # An assumption (the same rule as hardware.md's CPU peaks), stated in the output.
    if "avx512f" in flags:
        fpc = 64
    elif "fma" in flags:
        fpc = 32
    else:
        fpc = 8
    return {"cpu": model.group(1).strip() if model else platform.processor(), "threads": torch.get_num_threads(),
            "cores": os.cpu_count(), "ghz": round(float(mhz.group(1)) / 1000, 3) if mhz else None,
            "fp32_flops_per_cycle": fpc, "flops_per_cycle_note": "assumed from the CPU flags, not measured",
            "torch": torch.__version__}


class Layer(nn.Module):
    """One Llama-style decoder layer (RMSNorm, fused QKV, GQA SDPA, SwiGLU), as in measure_gpu.py."""

    def __init__(self, d: int, nh: int, nkv: int, ff: int) -> None:
        super().__init__()
        self.nh, self.nkv, self.hd = nh, nkv, d // nh
        self.qkv = nn.Linear(d, (nh + 2 * nkv) * self.hd, bias=False)
        self.o = nn.Linear(nh * self.hd, d, bias=False)
        self.gu = nn.Linear(d, 2 * ff, bias=False)
        self.down = nn.Linear(ff, d, bias=False)
        self.n1 = nn.RMSNorm(d)
        self.n2 = nn.RMSNorm(d)

    def forward(self, x: torch.Tensor, kc: torch.Tensor, vc: torch.Tensor, pos: int) -> torch.Tensor:
        b, t, _ = x.shape
        q, k, v = self.qkv(self.n1(x)).split([self.nh * self.hd, self.nkv * self.hd, self.nkv * self.hd], -1)
        q = q.view(b, t, self.nh, self.hd).transpose(1, 2)
        k = k.view(b, t, self.nkv, self.hd).transpose(1, 2)
        v = v.view(b, t, self.nkv, self.hd).transpose(1, 2)
        q = q * 0.5 + q.roll(1, -1) * 0.5
        kc[:, :, pos:pos + t] = k
        vc[:, :, pos:pos + t] = v
        a = F.scaled_dot_product_attention(q, kc[:, :, :pos + t], vc[:, :, :pos + t], is_causal=t > 1,
                                           enable_gqa=True)
        x = x + self.o(a.transpose(1, 2).reshape(b, t, -1))
        g, u = self.gu(self.n2(x)).chunk(2, -1)
        return x + self.down(F.silu(g) * u)


class LM(nn.Module):
    def __init__(self, d_model: int, layers: int, heads: int, kv_heads: int, ffn: int, vocab: int,
                 **_: Any) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, d_model)
        self.layers = nn.ModuleList([Layer(d_model, heads, kv_heads, ffn) for _ in range(layers)])
        self.norm = nn.RMSNorm(d_model)
        self.head = nn.Linear(d_model, vocab, bias=False)

    def forward(self, ids: torch.Tensor, caches: list[tuple[torch.Tensor, torch.Tensor]], pos: int) -> torch.Tensor:
        x = self.emb(ids)
        for layer, (kc, vc) in zip(self.layers, caches, strict=True):
            x = layer(x, kc, vc, pos)
        return self.head(self.norm(x[:, -1:]))


def main() -> None:
    torch.manual_seed(0)
    rows: list[dict[str, Any]] = [{"section": "env", **cpu_env()}]
    x = torch.zeros(1)
    n = 20000
    t = time.perf_counter()
    for _ in range(n):
        x.add_(1)
    rows.append({"section": "launch", "eager_tiny_op_us": round((time.perf_counter() - t) / n * 1e6, 3)})
    for m, nn_, k in [(1, 2048, 2048), (16, 2048, 2048), (128, 2048, 2048), (512, 2048, 2048),
                      (1024, 1024, 1024), (2048, 2048, 2048)]:
        a, b = torch.randn(m, k), torch.randn(k, nn_)
        ms = wall_ms(lambda a=a, b=b: a @ b)
        rows.append({"section": "gemm", "dtype": "fp32", "m": m, "n": nn_, "k": k, "ms": round(ms, 4),
                     "gflops": round(2 * m * nn_ * k / ms / 1e6, 2)})
    src = torch.ones(64 << 20, dtype=torch.uint8)
    dst = torch.empty_like(src)
    ms = wall_ms(lambda: dst.copy_(src))
    rows.append({"section": "copy", "kind": "d2d", "bytes": src.numel(), "ms": round(ms, 3),
                 "gbps_rw": round(2 * src.numel() / ms / 1e6, 2)})
    model = LM(**TINY).eval()
    hd = TINY["d_model"] // TINY["heads"]

    def caches(batch: int, length: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return [(torch.zeros(batch, TINY["kv_heads"], length, hd), torch.zeros(batch, TINY["kv_heads"], length, hd))
                for _ in range(TINY["layers"])]

    with torch.inference_mode():
        for tokens in [16, 128, 512]:
            c = caches(1, tokens)
            ids = torch.randint(0, TINY["vocab"], (1, tokens))
            ms = wall_ms(lambda ids=ids, c=c: model(ids, c, 0))
            rows.append({"section": "llm_prefill", "model": "tiny-llama", "arch": TINY, "device": "cpu",
                         "dtype": "fp32", "batch": 1, "tokens": tokens, "ms": round(ms, 3)})
        for batch, ctx in [(1, 256), (8, 256), (32, 1024)]:
            c = caches(batch, ctx + 1)
            ids = torch.randint(0, TINY["vocab"], (batch, 1))
            ms = wall_ms(lambda ids=ids, c=c, ctx=ctx: model(ids, c, ctx))
            rows.append({"section": "llm_decode", "model": "tiny-llama", "arch": TINY, "device": "cpu",
                         "dtype": "fp32", "mode": "eager", "batch": batch, "ctx": ctx, "ms": round(ms, 3)})
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("".join(json.dumps(r) + "\n" for r in rows))
    for r in rows:
        print(json.dumps(r))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
