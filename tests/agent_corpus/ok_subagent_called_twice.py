# expect: ok
"""One sub-agent called on a short question and on a long essay: each call keeps its own size."""
import plait


@plait.agent
def summarize(text: str) -> str:
    return plait.llm("llama-3.1-8b", prompt=plait.prompt("Summarize:\n{t}", t=text), max_tokens=128)


@plait.tool(latency_ms=50, output_tokens=3500)
def fetch_essay(q: str) -> str:
    return q * 100


@plait.agent(sla=plait.SLA(p95_ms=10000), qps=1)
def main(q: str) -> str:
    short = summarize(q)
    long = summarize(fetch_essay(q))
    return plait.llm("llama-3.1-8b", prompt=plait.prompt("{a}\n{b}", a=short, b=long), max_tokens=64)
