# expect: symbolic values cannot be used in Python operations (`.strip` on it)
import plait
from _tools import done, up


@plait.agent(qps=1)
def main(q: str) -> str:
    answer = plait.llm("llama-3.1-8b", prompt=q)
    return answer.strip()
