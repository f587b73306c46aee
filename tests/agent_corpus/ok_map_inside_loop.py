# expect: ok
"""Each round summarizes every retrieved chunk (a map) and asks whether to search again (a loop)."""
import plait


@plait.tool(latency_ms=10)
def satisfied(notes: str) -> bool:
    return "enough" in notes


@plait.agent(sla=plait.SLA(p95_ms=30000), qps=1)
def main(q: str) -> str:
    def research(notes):
        docs = plait.retrieve(index="papers", query=plait.embed(notes), k=4, doc_tokens=200)
        summaries = plait.map(lambda d: plait.llm("llama-3.2-1b", prompt=plait.prompt("Summarize: {d}", d=d),
                                                  max_tokens=80), docs)
        return plait.llm("llama-3.1-8b", prompt=plait.prompt("{n}\n{s}", n=notes, s=summaries), max_tokens=200)

    return plait.loop(research, init=q, until=satisfied, max_iters=3, expected_iters=plait.Dist.uniform(1, 3))
