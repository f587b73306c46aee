# expect: plait.llm's output_tokens (500) exceeds max_tokens (100)
import plait
from _tools import done, up


@plait.agent(qps=1)
def main(q: str) -> str:
    return plait.llm("llama-3.1-8b", prompt=q, max_tokens=100, output_tokens=500)
