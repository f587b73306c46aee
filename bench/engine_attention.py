"""How the engine reads paged KV: gathering blocks into a padded buffer + SDPA, against FlexAttention with a
block mask over the whole cache. The engine's choice (codegen/engine/model.py) rests on this table.

Shapes are the benchmark model's (12 heads, 4 KV heads, head_dim 64, blocks of 16 tokens), decode
batches at a 512-token context with scattered blocks. Writes bench/results/engine_attention.json.
Run: `.venv/bin/python bench/engine_attention.py` (about a minute: FlexAttention compiles first).
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from _engine_common import CLOCK_NOTE, best_seconds, set_threads, write_results
from torch.nn.attention.flex_attention import create_block_mask, flex_attention

from plait.codegen.engine.model import gather

HEADS, KV_HEADS, HEAD_DIM, BLOCK, CONTEXT = 12, 4, 64, 16, 512


def case(batch: int, flex: object) -> dict[str, float]:
    gen = torch.Generator().manual_seed(batch)
    per_seq = CONTEXT // BLOCK
    num_blocks = batch * per_seq + 8
    k_cache = torch.randn(num_blocks, BLOCK, KV_HEADS, HEAD_DIM, generator=gen)
    v_cache = torch.randn(num_blocks, BLOCK, KV_HEADS, HEAD_DIM, generator=gen)
    tables = torch.randperm(num_blocks, generator=gen)[:batch * per_seq].view(batch, per_seq)
    lengths = torch.randint(CONTEXT // 2, CONTEXT + 1, (batch,), generator=gen)
    q = torch.randn(batch, HEADS, HEAD_DIM, generator=gen)
    mask = (torch.arange(CONTEXT)[None] < lengths[:, None])[:, None, None, :]

    def gathered() -> torch.Tensor:
        return F.scaled_dot_product_attention(q.unsqueeze(2), gather(k_cache, tables), gather(v_cache, tables),
                                              attn_mask=mask, enable_gqa=True).squeeze(2)

    owner = torch.full((num_blocks,), -1)
    logical = torch.zeros(num_blocks, dtype=torch.long)
    for b in range(batch):
        owner[tables[b]] = b
        logical[tables[b]] = torch.arange(per_seq)

    def mask_mod(b, h, q_index, kv_index):  # type: ignore[no-untyped-def]
        block = kv_index // BLOCK
        return (owner[block] == q_index) & (logical[block] * BLOCK + kv_index % BLOCK < lengths[q_index])

    slots = num_blocks * BLOCK

    def block_mask():  # type: ignore[no-untyped-def]
        return create_block_mask(mask_mod, 1, None, batch, slots, device="cpu")

    whole_k = k_cache.flatten(0, 1).transpose(0, 1).unsqueeze(0)  # [1, kv heads, slots, d]
    whole_v = v_cache.flatten(0, 1).transpose(0, 1).unsqueeze(0)
    fixed_mask = block_mask()

    def flex_step(bm) -> torch.Tensor:  # type: ignore[no-untyped-def]
        out = flex(q.transpose(0, 1).unsqueeze(0), whole_k, whole_v, block_mask=bm, enable_gqa=True)  # type: ignore[operator]
        return out[0].transpose(0, 1)

    start = time.perf_counter()
    got = flex_step(fixed_mask)
    compile_s = time.perf_counter() - start
    assert torch.allclose(got, gathered(), atol=1e-4), "FlexAttention and gather + SDPA disagree"
    return {"batch": batch, "context": CONTEXT,
            "gather_sdpa_ms": best_seconds(gathered, reps=20) * 1e3,
            "flex_ms": best_seconds(lambda: flex_step(fixed_mask), reps=10) * 1e3,
            "block_mask_ms": best_seconds(block_mask, reps=5) * 1e3,
            "flex_first_call_s": compile_s}


def main() -> None:
    threads = set_threads()
    flex = torch.compile(flex_attention, dynamic=False)
    rows = [case(batch, flex) for batch in (1, 16)]
    print(f"paged decode attention, one layer, {threads} thread(s) {CLOCK_NOTE}, context {CONTEXT}, blocks of {BLOCK}")
    print(f"{'batch':>5} {'gather+SDPA ms':>15} {'flex ms':>9} {'+ block mask ms':>16} {'flex 1st call s':>16}")
    for r in rows:
        print(f"{r['batch']:>5} {r['gather_sdpa_ms']:>15.2f} {r['flex_ms']:>9.2f} "
              f"{r['flex_ms'] + r['block_mask_ms']:>16.2f} {r['flex_first_call_s']:>16.1f}")
    write_results("engine_attention", {"rows": rows, "shape": {"heads": HEADS, "kv_heads": KV_HEADS,
                                                               "head_dim": HEAD_DIM, "block_size": BLOCK}})


if __name__ == "__main__":
    main()
