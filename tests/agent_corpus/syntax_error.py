# expect: syntax error in the agent file: invalid syntax
import plait
from _tools import done, up


@plait.agent(qps=1)
def main(q: str) -> str:
    return q +
