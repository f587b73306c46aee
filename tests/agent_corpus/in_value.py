# expect: symbolic values cannot be used in Python operations (`in` on it)
import plait
from _tools import done, up


@plait.agent(qps=1)
def main(q: str) -> str:
    answer = plait.llm("llama-3.1-8b", prompt=q)
    return q if "yes" in answer else answer
