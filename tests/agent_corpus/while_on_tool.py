# expect: symbolic values cannot decide a Python `while`
import plait
from _tools import done, up


@plait.agent(qps=1)
def main(q: str) -> str:
    while done(q):
        q = up(q)
    return q
