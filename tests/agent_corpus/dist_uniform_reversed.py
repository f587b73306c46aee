# expect: plait.Dist.uniform needs lo <= hi, got lo=8, hi=2
import plait
from _tools import done, up


@plait.agent(qps=1)
def main(q: str) -> str:
    return plait.llm("llama-3.1-8b", prompt=q, output_tokens=plait.Dist.uniform(8, 2))
