# expect: plait.loop's until must return bool, got text
import plait
from _tools import done, up


@plait.agent(qps=1)
def main(q: str) -> str:
    return plait.loop(up, init=q, until=up, max_iters=3)
