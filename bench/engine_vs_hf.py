"""The engine against transformers' generate on the same weights: tokens/s at batch 1 and 16 concurrent.

Both run the benchmark model (bench/_engine_common.py, ~125M parameters, random weights saved once as a
HF checkpoint and loaded by each), float32, the same thread count, SDPA attention, their own KV caches,
inference mode, greedy, 32-token prompts and 32 new tokens (no early stop); warm-up excluded, best of 3
run in turn (engine, transformers, engine, ...).
Writes bench/results/engine_vs_hf.json. Run: `.venv/bin/python bench/engine_vs_hf.py` (about 2 minutes).
"""

from __future__ import annotations

import tempfile

import torch
from _engine_common import (
    BENCH_MODEL,
    CLOCK_NOTE,
    best_seconds_alternating,
    model_payload,
    set_threads,
    write_results,
)

from plait.codegen.engine import LLMEngine, SamplingParams, load_checkpoint
from plait.codegen.engine.weights import random_checkpoint, save_checkpoint

PROMPT_TOKENS, NEW_TOKENS = 32, 32


def main() -> None:
    from transformers import LlamaForCausalLM

    threads = set_threads()
    gen = torch.Generator().manual_seed(0)
    prompts = torch.randint(0, BENCH_MODEL.vocab_size, (16, PROMPT_TOKENS), generator=gen)
    with tempfile.TemporaryDirectory() as folder:
        save_checkpoint(folder, BENCH_MODEL, random_checkpoint(BENCH_MODEL, seed=0))
        config, model = load_checkpoint(folder)
        hf = LlamaForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation="sdpa").eval()
    rows = []
    for batch in (1, 16):
        engine = LLMEngine(model, config, max_batch=batch, enable_prefix_reuse=False)
        params = SamplingParams(max_tokens=NEW_TOKENS, ignore_eos=True)
        ids = prompts[:batch]

        def hf_generate(ids: torch.Tensor = ids) -> torch.Tensor:
            with torch.inference_mode():
                return hf.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=NEW_TOKENS,
                                   min_new_tokens=NEW_TOKENS, do_sample=False, use_cache=True)
        engine_s, hf_s = best_seconds_alternating(
            [lambda ids=ids, engine=engine, params=params: engine.generate(ids.tolist(), params), hf_generate], reps=3)
        tokens = batch * NEW_TOKENS
        rows.append({"batch": batch, "engine_tok_s": tokens / engine_s, "hf_tok_s": tokens / hf_s,
                     "ratio": hf_s / engine_s})
        # Same weights, same greedy choice: the tokens agree (a check that both ran the same model).
        ours = engine.generate(ids[:1].tolist(), params)[0].token_ids
        assert ours == hf_generate(ids[:1])[0, PROMPT_TOKENS:].tolist(), "engine and transformers disagree"
    print(f"{BENCH_MODEL.name} ({BENCH_MODEL.n_params() / 1e6:.0f}M params, random weights), float32, "
          f"{threads} thread(s) {CLOCK_NOTE}, {PROMPT_TOKENS}-token prompts, {NEW_TOKENS} new tokens")
    print(f"{'batch':>5} {'engine tok/s':>13} {'transformers tok/s':>19} {'engine / transformers':>22}")
    for r in rows:
        print(f"{r['batch']:>5} {r['engine_tok_s']:>13.1f} {r['hf_tok_s']:>19.1f} {r['ratio']:>21.2f}x")
    write_results("engine_vs_hf", model_payload(PROMPT_TOKENS, NEW_TOKENS, rows))


if __name__ == "__main__":
    main()
