# expect: plait.gather needs at least one value
import plait
from _tools import done, up


@plait.agent(qps=1)
def main(q: str) -> list[str]:
    return plait.gather()
