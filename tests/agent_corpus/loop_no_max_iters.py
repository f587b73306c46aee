# expect: plait.loop needs max_iters: an unbounded loop cannot be planned
import plait
from _tools import done, up


@plait.agent(qps=1)
def main(q: str) -> str:
    return plait.loop(up, init=q, until=done)
