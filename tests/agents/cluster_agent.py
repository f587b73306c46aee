"""A small agent for the cluster tests: a tool on CPU workers, then one LLM call on a GPU pool, so a plan of it
has both kinds of pool (a node selector and nvidia.com/gpu for one, cpu and memory for the other)."""

import plait


@plait.tool(latency_ms=2)
def tidy(text: str) -> str:
    return " ".join(text.split())


@plait.agent(sla=plait.SLA(p95_ms=5000), qps=2)
def ask(text: str) -> str:
    return plait.llm("llama-3.1-8b", prompt=plait.prompt("Answer: {t}", t=tidy(text)), max_tokens=32,
                     prompt_tokens=64, output_tokens=32)
