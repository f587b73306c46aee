# expect: agent 'main' calls itself; recursion cannot be traced
import plait
from _tools import done, up


@plait.agent(qps=1)
def main(q: str) -> str:
    return main(up(q))
