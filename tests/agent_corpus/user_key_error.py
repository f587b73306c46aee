# expect: agent 'main' raised KeyError while being traced: 'max'
import plait
from _tools import done, up


@plait.agent(qps=1)
def main(q: str) -> str:
    limits = {"min": 10}
    return plait.llm("llama-3.1-8b", prompt=q, max_tokens=limits["max"])
