# expect: symbolic values have no truth value at trace time (bool(), and, or, not)
import plait
from _tools import done, up


@plait.agent(qps=1)
def main(q: str) -> str:
    return q and up(q)
