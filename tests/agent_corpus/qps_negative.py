# expect: @plait.agent main's qps must be a rate > 0 (requests/s), got -1
import plait
from _tools import done, up


@plait.agent(qps=-1)
def main(q: str) -> str:
    return q
