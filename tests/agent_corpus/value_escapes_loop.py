# expect: value %llm_1 cannot be used outside the plait.loop body 'body' that made it
import plait
from _tools import done, up


@plait.agent(qps=1)
def main(q: str) -> str:
    kept = []
    def body(x):
        kept.append(plait.llm("llama-3.1-8b", prompt=x))
        return kept[-1]
    plait.loop(body, init=q, until=done, max_iters=2)
    return plait.llm("llama-3.1-8b", prompt=kept[0])
