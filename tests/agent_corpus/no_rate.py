# expect graph: ok
# expect ir: ok
# expect plan: agent 'main' has no request rate, and a plan is sized for one
import plait
from _tools import done, up


@plait.agent(sla=plait.SLA(p95_ms=5000))
def main(q: str) -> str:
    return plait.llm("llama-3.1-8b", prompt=q, max_tokens=64)
