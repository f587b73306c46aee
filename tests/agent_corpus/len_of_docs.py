# expect: symbolic values have no len() at trace time
import plait
from _tools import done, up


@plait.agent(qps=1)
def main(q: str) -> str:
    docs = plait.retrieve(index="w", query=plait.embed(q), k=3)
    return plait.llm("llama-3.1-8b", prompt=q, max_tokens=len(docs))
