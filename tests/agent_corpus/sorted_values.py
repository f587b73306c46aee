# expect: symbolic values cannot be used in Python operations (comparing it with `<` (or max/min))
import plait
from _tools import done, up


@plait.agent(qps=1)
def main(q: str) -> str:
    return sorted([up(q), q])[0]
