# expect: 'main' in {file} is not a @plait.agent (it is a @plait.tool)
import plait


@plait.tool(latency_ms=5)
def main(x: str) -> str:
    return x


@plait.tool(latency_ms=5)
def done(x: str) -> bool:
    return True
