# expect: plait.loop's expected_iters (9) must lie between 1 and max_iters (3)
import plait
from _tools import done, up


@plait.agent(qps=1)
def main(q: str) -> str:
    return plait.loop(up, init=q, until=done, max_iters=3, expected_iters=9)
