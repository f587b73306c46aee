# expect: model 'minilm-l6' is an encoder model, but plait.llm needs an llm model
import plait
from _tools import done, up


@plait.agent(qps=1)
def main(q: str) -> str:
    return plait.llm("minilm-l6", prompt=q)
