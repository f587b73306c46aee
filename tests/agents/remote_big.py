"""A small agent for the remote-pool tests: a tool here, then a 70B model's call that only an OpenAI-compatible
endpoint in the inventory can take (it fits on no device the test's inventory has)."""

import plait


@plait.tool(latency_ms=1)
def tidy(text: str) -> str:
    return text.strip()


@plait.agent(sla=plait.SLA(p95_ms=20000), qps=0.5)
def ask(text: str) -> str:
    return plait.llm("llama-3.1-70b", prompt=plait.prompt("Answer: {t}", t=tidy(text)), max_tokens=8)
