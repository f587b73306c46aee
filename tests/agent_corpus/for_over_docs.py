# expect: symbolic values cannot be iterated by a Python `for` (or unpacked)
import plait
from _tools import done, up


@plait.agent(qps=1)
def main(q: str) -> str:
    docs = plait.retrieve(index="w", query=plait.embed(q), k=3)
    for d in docs:
        q = up(d)
    return q
