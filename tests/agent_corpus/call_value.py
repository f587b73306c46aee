# expect: symbolic values cannot be used in Python operations (calling it)
import plait
from _tools import done, up


@plait.agent(qps=1)
def main(q: str) -> str:
    return q()
