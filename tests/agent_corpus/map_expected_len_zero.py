# expect: plait.map's expected_len must be > 0, got 0: a map over no elements never runs
import plait
from _tools import done, up


@plait.agent(qps=1)
def main(q: str) -> list[str]:
    return plait.map(up, plait.gather(q, q), expected_len=0)
