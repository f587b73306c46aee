# expect: symbolic values cannot decide a Python `if`
import plait
from _tools import done, up


@plait.agent(qps=1)
def main(q: str) -> str:
    a = plait.llm("llama-3.1-8b", prompt=q)
    if a:
        return a
    return q
