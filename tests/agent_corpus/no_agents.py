# expect: no agent 'main' in {file}
import plait


@plait.tool(latency_ms=5)
def up(x: str) -> str:
    return x


@plait.tool(latency_ms=5)
def done(x: str) -> bool:
    return True
