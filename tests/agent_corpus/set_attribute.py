# expect: symbolic values cannot be used in Python operations (setting `.cached` on it)
import plait
from _tools import done, up


@plait.agent(qps=1)
def main(q: str) -> str:
    q.cached = True
    return q
