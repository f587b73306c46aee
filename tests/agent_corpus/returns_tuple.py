# expect: agent 'main' must return one value, got 2
import plait
from _tools import done, up


@plait.agent(qps=1)
def main(q: str) -> str:
    return q, up(q)
