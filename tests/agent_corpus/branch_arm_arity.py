# expect: plait.branch arm 'long' cannot take 1 value(s): too many positional arguments
import plait
from _tools import done, up


@plait.agent(qps=1)
def main(q: str) -> str:
    def short(x):
        return x
    def long():
        return q
    return plait.branch(done(q), q, arms=[short, long])
