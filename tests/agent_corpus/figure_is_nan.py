# expect: plait.llm's output_tokens must be a finite number >= 0, got nan
import plait
from _tools import done, up


@plait.agent(qps=1)
def main(q: str) -> str:
    return plait.llm("llama-3.1-8b", prompt=q, output_tokens=float("nan"))
