# expect: agent 'main' raised ZeroDivisionError while being traced: integer division or modulo by zero
import plait
from _tools import done, up


@plait.agent(qps=1)
def main(q: str) -> str:
    budget = 0
    return plait.llm("llama-3.1-8b", prompt=q, max_tokens=512 // budget)
