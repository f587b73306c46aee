# expect: tool up was called with the wrong arguments: too many positional arguments
import plait
from _tools import done, up


@plait.agent(qps=1)
def main(q: str) -> str:
    return up(q, q)
