# expect: agent 'main' raised AttributeError while being traced: 'NoneType' object has no attribute 'split'
import plait
from _tools import done, up


@plait.agent(qps=1)
def main(q: str) -> str:
    config = None
    return plait.llm(config.split()[0], prompt=q)
