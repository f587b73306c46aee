# expect: plait.prompt's template is not a valid format string: Single '{' encountered in format string
import plait
from _tools import done, up


@plait.agent(qps=1)
def main(q: str) -> str:
    return plait.llm("llama-3.1-8b", prompt=plait.prompt("{", q=q))
