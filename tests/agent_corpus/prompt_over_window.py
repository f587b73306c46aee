# expect: plait.llm's prompt (32000 tokens at p95) plus max_tokens (1024) exceeds mistral-7b's context window of 32768 tokens
import plait
from _tools import done, up


@plait.agent(qps=1)
def main(q: str) -> str:
    return plait.llm("mistral-7b", prompt=q, prompt_tokens=32000, max_tokens=1024)
