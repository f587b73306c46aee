# expect: plait.map function '<lambda>' cannot take 1 value(s): missing a required argument: 'b'
import plait
from _tools import done, up


@plait.agent(qps=1)
def main(q: str) -> list[str]:
    return plait.map(lambda a, b: a, plait.gather(q, q))
