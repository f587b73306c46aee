# expect: ok
"""A branch whose one arm refines in a loop and whose other answers at once."""
import plait


@plait.tool(latency_ms=20)
def route(q: str) -> str:
    return "hard" if len(q) > 80 else "easy"


@plait.tool(latency_ms=5)
def good_enough(draft: str) -> bool:
    return "TODO" not in draft


def easy(q):
    return plait.llm("llama-3.2-1b", prompt=q, max_tokens=64, output_tokens=40)


def hard(q):
    def refine(draft):
        return plait.llm("llama-3.1-8b", prompt=plait.prompt("Improve:\n{d}", d=draft), max_tokens=256)

    return plait.loop(refine, init=q, until=good_enough, max_iters=4, expected_iters=2)


@plait.agent(sla=plait.SLA(p95_ms=20000), qps=2)
def main(q: str) -> str:
    return plait.branch(route, q, arms={"easy": easy, "hard": hard}, p=[0.7, 0.3])
