# expect: plait.branch needs two or more arms with distinct names, got ['up']
import plait
from _tools import done, up


@plait.agent(qps=1)
def main(q: str) -> str:
    return plait.branch(done(q), q, arms=[up])
