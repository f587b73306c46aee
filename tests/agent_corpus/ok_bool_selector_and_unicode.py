# expect: ok
"""A bool selector chooses between two arms; templates hold non-ASCII text and literal braces."""
import plait


@plait.tool(latency_ms=3)
def is_french(q: str) -> bool:
    return "é" in q


def french(q):
    return plait.llm("mistral-7b", prompt=plait.prompt("Réponds en français {{poliment}} : {q}", q=q),
                     max_tokens=100)


def english(q):
    return plait.llm("llama-3.1-8b", prompt=plait.prompt("Answer {{politely}}: {q}", q=q), max_tokens=100)


@plait.agent(sla=plait.SLA(p95_ms=6000), qps=3)
def main(q: str) -> str:
    return plait.branch(is_french(q), q, arms=[french, english], p=[0.2, 0.8])
