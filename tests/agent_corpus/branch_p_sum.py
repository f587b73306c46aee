# expect: plait.branch's p must give one probability in [0, 1] per arm, summing to 1; got [0.5, 0.6] for arms ['up', 'main_arm']
import plait
from _tools import done, up


@plait.agent(qps=1)
def main(q: str) -> str:
    def main_arm(x):
        return x
    return plait.branch(done(q), q, arms=[up, main_arm], p=[0.5, 0.6])
