# expect: plait.llm's max_tokens must be an integer from 1 to 2**63 - 1, got 1180591620717411303424
import plait
from _tools import done, up


@plait.agent(qps=1)
def main(q: str) -> str:
    return plait.llm("llama-3.1-8b", prompt=q, max_tokens=2**70)
