# expect: ok
"""Tools with constant arguments and structured (json) values between them."""
import plait


@plait.tool(latency_ms=plait.Dist.normal(120, 30), output_tokens=300)
def search(query: str, top: int = 5, region: str = "eu") -> dict:
    return {"query": query, "top": top}


@plait.tool(latency_ms=2)
def to_text(results: dict) -> str:
    return str(results)


@plait.agent(sla=plait.SLA(p95_ms=8000, ttft_ms=2000), qps=4)
def main(q: str) -> str:
    found = search(q, 10, region="us")
    return plait.llm("mistral-7b", prompt=plait.prompt("Results: {r}\nQ: {q}", r=to_text(found), q=q),
                     max_tokens=200, output_tokens=plait.Dist.normal(120, 30))
