# expect: symbolic values cannot decide a Python `if`
import plait
from _tools import done, up


@plait.agent(qps=1)
def main(q: str) -> str:
    return up(q) if done(q) else q
