"""Two calls of one model, long prompts and short answers, at 10 req/s within 15 s p95 and 15 ms per output token,
on a fleet of H100s and L40Ss (handoff.inventory.yaml): the planner splits prefill from decode, the KV cache moving
between the pools. With a looser SLA (30 s p95, no TPOT target) it keeps them unified. tests/test_runtime_split.py
and bench/split_vs_unified.py run both plans."""

import plait

MODEL = "llama-3.1-8b"


@plait.agent(sla=plait.SLA(p95_ms=15000, tpot_ms=15), qps=10)
def draft_and_check(q: str) -> str:
    draft = plait.llm(MODEL, prompt=q, max_tokens=1000, prompt_tokens=2000, output_tokens=500)
    check = plait.prompt("Check this answer to {q}\n{draft}", q=q, draft=draft)
    return plait.llm(MODEL, prompt=check, max_tokens=1000, prompt_tokens=2000, output_tokens=500)
