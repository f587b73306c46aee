# expect: ok
"""Several parameters of different types, values read from an enclosing scope inside a map and a loop."""
import plait


@plait.tool(latency_ms=4)
def merged(a: str, b: list[str]) -> str:
    return a + "".join(b)


@plait.tool(latency_ms=4)
def stop(x: str) -> bool:
    return True


@plait.agent(sla=plait.SLA(p95_ms=15000), qps=1)
def main(question: str, context: list[str], style: str) -> str:
    per_item = plait.map(lambda c: plait.llm("llama-3.2-1b", prompt=plait.prompt("{s}: {c}", s=style, c=c),
                                             max_tokens=50), context, expected_len=6)
    start = merged(question, per_item)
    return plait.loop(lambda d: plait.llm("llama-3.1-8b", prompt=plait.prompt("{q} {d}", q=question, d=d),
                                          max_tokens=100), init=start, until=stop, max_iters=3, expected_iters=1.5)
