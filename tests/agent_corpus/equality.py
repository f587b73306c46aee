# expect: symbolic values cannot be used in Python operations (comparing it with `==`)
import plait
from _tools import done, up


@plait.agent(qps=1)
def main(q: str) -> str:
    return up(q) == q
