# expect: plait.llm's max_tokens (200000) exceeds llama-3.1-8b's context window of 131072 tokens
import plait
from _tools import done, up


@plait.agent(qps=1)
def main(q: str) -> str:
    return plait.llm("llama-3.1-8b", prompt=q, max_tokens=200000)
