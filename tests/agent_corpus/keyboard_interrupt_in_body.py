# expect: agent 'main' raised KeyboardInterrupt while being traced
import plait
from _tools import done, up


@plait.agent(qps=1)
def main(q: str) -> str:
    raise KeyboardInterrupt
