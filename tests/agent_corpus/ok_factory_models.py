# expect: ok
"""Two agents made by one factory: same function name, different models."""
import plait


def make_answerer(model: str) -> plait.Agent:
    @plait.agent
    def answer(q: str) -> str:
        return plait.llm(model, prompt=q, max_tokens=64, prompt_tokens=200)

    return answer


small = make_answerer("llama-3.2-1b")
large = make_answerer("llama-3.1-70b")


@plait.agent(sla=plait.SLA(p95_ms=20000), qps=1)
def main(q: str) -> list[str]:
    return plait.gather(small(q), large(q))
