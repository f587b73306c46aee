"""Time this machine's CPU (gemm, copy, launch overhead, a tiny Llama-shaped forward) for the CPU fit.

Writes JSON lines to planner/data/cpu_timings.jsonl (checked in; `plait cost --fit-report` fits the
CPU efficiency factors from it) and prints a table. Run: `.venv/bin/python bench/cpu_timings.py`.
The rows mirror ../shared/calibration/measure_gpu.py so one fitting code path reads both.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from plait.codegen.microbench import kernel_rows, wall_ms

OUT = Path(__file__).resolve().parents[1] / "planner" / "data" / "cpu_timings.jsonl"
TINY = {"name": "tiny-llama", "d_model": 512, "layers": 4, "heads": 8, "kv_heads": 2, "ffn": 1536,
        "vocab": 8192}


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
    rows: list[dict[str, Any]] = kernel_rows()   # env, launch, gemm, copy: what `plait calibrate --cpu` times
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
