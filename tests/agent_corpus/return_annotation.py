# expect: type mismatch: agent 'main' is annotated to return audio, but returns %llm_1 of type text
import plait
from _tools import done, up


@plait.agent(qps=1)
def main(q: str) -> bytes:
    return plait.llm("llama-3.1-8b", prompt=q)
