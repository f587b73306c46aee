# expect: plait.loop's until must be a function, got bool True
import plait
from _tools import done, up


@plait.agent(qps=1)
def main(q: str) -> str:
    return plait.loop(up, init=q, until=True, max_iters=3)
