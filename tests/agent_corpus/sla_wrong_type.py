# expect: plait.SLA's p95_ms must be a number of milliseconds > 0, got 'fast'
import plait
from _tools import done, up


@plait.agent(sla=plait.SLA(p95_ms='fast'), qps=1)
def main(q: str) -> str:
    return q
