# expect: symbolic values cannot be used in Python operations (indexing it)
import plait
from _tools import done, up


@plait.agent(qps=1)
def main(q: str) -> str:
    docs = plait.retrieve(index="w", query=plait.embed(q), k=3)
    return docs[0]
