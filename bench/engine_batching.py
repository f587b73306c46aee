"""Continuous batching on this CPU: tokens/s with 1, 4, 16 and 64 requests in flight, against the same kind
of requests run one at a time in the same engine (max batch 1). Goal (issue 13): at least 3x at 16.

The benchmark model (bench/_engine_common.py, ~125M parameters, random weights: the tokens are noise),
float32, 32-token prompts, 32 new tokens each (no early stop), prefix reuse off (the prompts are
random anyway). Tokens/s counts generated tokens over wall time, prefill included; best of 2 after a
warm-up. One at a time is measured on 8 requests (every request has the same shape, so its rate is the
same for any count). Writes bench/results/engine_batching.json.
Run: `.venv/bin/python bench/engine_batching.py` (about 3 minutes).
"""

from __future__ import annotations

import torch
from _engine_common import BENCH_MODEL, CLOCK_NOTE, best_seconds, model_payload, set_threads, write_results

from plait.codegen.engine import LLMEngine, SamplingParams, random_model

PROMPT_TOKENS, NEW_TOKENS, SEQUENTIAL_REQUESTS = 32, 32, 8


def tokens_per_second(model: torch.nn.Module, prompts: list[list[int]], max_batch: int, reps: int) -> float:
    engine = LLMEngine(model, BENCH_MODEL, max_batch=max_batch, token_budget=max(512, max_batch),  # type: ignore[arg-type]
                       enable_prefix_reuse=False)
    params = SamplingParams(max_tokens=NEW_TOKENS, ignore_eos=True)
    seconds = best_seconds(lambda: engine.generate(prompts, params), reps=reps)
    assert engine.preemptions == 0
    return len(prompts) * NEW_TOKENS / seconds


def main() -> None:
    threads = set_threads()
    model = random_model(BENCH_MODEL, seed=0)
    gen = torch.Generator().manual_seed(0)
    prompts = torch.randint(0, BENCH_MODEL.vocab_size, (64, PROMPT_TOKENS), generator=gen).tolist()
    one_at_a_time = tokens_per_second(model, prompts[:SEQUENTIAL_REQUESTS], 1, reps=1)
    rows = []
    for concurrent in (1, 4, 16, 64):
        rate = tokens_per_second(model, prompts[:concurrent], concurrent, reps=2)
        rows.append({"concurrent": concurrent, "tok_s": rate, "one_at_a_time_tok_s": one_at_a_time,
                     "speedup": rate / one_at_a_time})
    print(f"{BENCH_MODEL.name} ({BENCH_MODEL.n_params() / 1e6:.0f}M params, random weights), float32, "
          f"{threads} thread(s) {CLOCK_NOTE}, {PROMPT_TOKENS}-token prompts, {NEW_TOKENS} new tokens each")
    print(f"{'concurrent':>10} {'tok/s':>8} {'one at a time tok/s':>20} {'speedup':>8}")
    for r in rows:
        print(f"{r['concurrent']:>10} {r['tok_s']:>8.1f} {r['one_at_a_time_tok_s']:>20.1f} {r['speedup']:>7.1f}x")
    at16 = next(r for r in rows if r["concurrent"] == 16)["speedup"]
    print(f"speedup at 16 concurrent: {at16:.1f}x (goal >= 3x: {'met' if at16 >= 3 else 'NOT met'})")
    write_results("engine_batching", model_payload(PROMPT_TOKENS, NEW_TOKENS, rows))


if __name__ == "__main__":
    main()
