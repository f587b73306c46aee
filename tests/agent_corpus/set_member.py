# expect: symbolic values cannot be used in Python operations (hashing it (a dict key or set member))
import plait
from _tools import done, up


@plait.agent(qps=1)
def main(q: str) -> str:
    seen = {q, up(q)}
    return q
