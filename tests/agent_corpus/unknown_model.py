# expect: unknown model 'llama-3.1-8' for plait.llm
import plait
from _tools import done, up


@plait.agent(qps=1)
def main(q: str) -> str:
    return plait.llm("llama-3.1-8", prompt=q)
