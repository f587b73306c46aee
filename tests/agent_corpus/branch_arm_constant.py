# expect: plait.branch arm 'b' must return a value produced by a step, got int 3
import plait
from _tools import done, up


@plait.agent(qps=1)
def main(q: str) -> str:
    def a(x):
        return x
    def b(x):
        return 3
    return plait.branch(done(q), q, arms=[a, b])
