# expect: agent 'main' called exit() while being traced: 3
import plait
from _tools import done, up


@plait.agent(qps=1)
def main(q: str) -> str:
    raise SystemExit(3)
