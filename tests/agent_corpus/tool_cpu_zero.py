# expect: @plait.tool slow's cpu must be a number of cores > 0, got 0
import plait


@plait.tool(cpu=0)
def slow(x: str) -> str:
    return x
