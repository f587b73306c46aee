# expect: plait.map function must be a function, got str 'up'
import plait
from _tools import done, up


@plait.agent(qps=1)
def main(q: str) -> list[str]:
    return plait.map("up", plait.gather(q, q))
