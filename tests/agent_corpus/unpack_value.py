# expect: symbolic values cannot be iterated by a Python `for` (or unpacked)
import plait
from _tools import done, up


@plait.agent(qps=1)
def main(q: str) -> str:
    a, b = plait.gather(q, q)
    return a
