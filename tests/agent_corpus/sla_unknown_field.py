# expect: plait.SLA has no field 'p99_ms'
import plait
from _tools import done, up


@plait.agent(sla=plait.SLA(p99_ms=100), qps=1)
def main(q: str) -> str:
    return q
