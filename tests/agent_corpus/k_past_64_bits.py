# expect: plait.retrieve's k must be an integer from 1 to 2**63 - 1, got 18446744073709551616
import plait
from _tools import done, up


@plait.agent(qps=1)
def main(q: str) -> str:
    docs = plait.retrieve(index="w", query=plait.embed(q), k=2**64)
    return plait.llm("llama-3.1-8b", prompt=plait.prompt("{d}", d=docs))
