# expect: agent 'main' must return a value produced by a step, got NoneType None
import plait
from _tools import done, up


@plait.agent(qps=1)
def main(q: str) -> str:
    plait.llm("llama-3.1-8b", prompt=q)
