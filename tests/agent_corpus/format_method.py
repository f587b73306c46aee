# expect: symbolic values cannot be used in Python operations (formatting it into a Python string)
import plait
from _tools import done, up


@plait.agent(qps=1)
def main(q: str) -> str:
    return plait.llm("llama-3.1-8b", prompt="Q: {}".format(q))
