# expect: plait.llm's output_tokens must be a number >= 0 or a plait.Dist, got 'many'
import plait
from _tools import done, up


@plait.agent(qps=1)
def main(q: str) -> str:
    return plait.llm("llama-3.1-8b", prompt=q, output_tokens="many")
