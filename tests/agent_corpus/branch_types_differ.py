# expect: type mismatch: plait.branch's arms return different types (up returns text, vec_arm returns vec)
import plait
from _tools import done, up


@plait.agent(qps=1)
def main(q: str) -> str:
    def vec_arm(x):
        return plait.embed(x)
    return plait.branch(done(q), q, arms=[up, vec_arm])
