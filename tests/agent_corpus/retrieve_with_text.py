# expect: type mismatch between steps: plait.retrieve's query takes vec, but %q gives text
import plait
from _tools import done, up


@plait.agent(qps=1)
def main(q: str) -> str:
    return plait.retrieve(index="w", query=q)
