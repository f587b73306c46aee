# expect: plait.loop body 'step' cannot take 1 value(s): missing a required argument: 'extra'
import plait
from _tools import done, up


@plait.agent(qps=1)
def main(q: str) -> str:
    def step(state, extra):
        return state
    return plait.loop(step, init=q, until=done, max_iters=3)
