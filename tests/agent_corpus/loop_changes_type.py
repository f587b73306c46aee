# expect: type mismatch: plait.loop's body returns vec, but the carried value is text
import plait
from _tools import done, up


@plait.agent(qps=1)
def main(q: str) -> str:
    return plait.loop(lambda s: plait.embed(s), init=q, until=done, max_iters=3)
