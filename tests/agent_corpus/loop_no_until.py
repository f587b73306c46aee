# expect: plait.loop needs until=<predicate>: what ends the loop at run time
import plait
from _tools import done, up


@plait.agent(qps=1)
def main(q: str) -> str:
    return plait.loop(up, init=q, max_iters=3)
