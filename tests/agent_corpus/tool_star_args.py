# expect: a @plait.tool must take named parameters, not *xs
import plait


@plait.tool
def joined(*xs: str) -> str:
    return ''.join(xs)
