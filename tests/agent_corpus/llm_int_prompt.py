# expect: plait.llm's prompt must be a value produced by a step, got int 123
import plait
from _tools import done, up


@plait.agent(qps=1)
def main(q: str) -> str:
    return plait.llm("llama-3.1-8b", prompt=123)
