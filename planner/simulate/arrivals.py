"""Request arrival times: a Poisson stream at a rate, or the times read from a file."""

from __future__ import annotations

import math
import random
from pathlib import Path

from plait.planner.simulate.errors import SimulateError


def poisson(n: int, qps: float, rng: random.Random) -> list[float]:
    """`n` arrival times (s) of a Poisson stream of `qps` requests per second, starting at 0."""
    if not (math.isfinite(qps) and qps > 0):
        raise SimulateError(f"the request rate must be a finite number > 0, got {qps!r}.\nTo fix: pass --qps R.")
    t, out = 0.0, []
    for _ in range(n):
        t += rng.expovariate(qps)
        out.append(t)
    return out


def from_file(path: Path, limit: int | None = None) -> list[float]:
    """Arrival times (s) from a text file: one number per line (blank lines and `#` comments skipped), sorted."""
    try:
        text = path.read_text()
    except OSError as err:
        raise SimulateError(f"cannot read the arrivals file {path}: {err.strerror or err}.\n"
                            "To fix: pass --arrivals FILE with one arrival time in seconds per line.") from None
    out: list[float] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            t = float(line)
        except ValueError:
            t = math.nan
        if not (math.isfinite(t) and t >= 0):
            raise SimulateError(f"{path}:{lineno}: an arrival time must be a number of seconds >= 0, got {line!r}.\n"
                                "To fix: write one time per line, e.g. 0.25.")
        out.append(t)
    if not out:
        raise SimulateError(f"the arrivals file {path} holds no times.\nTo fix: write one time (s) per line.")
    out.sort()
    return out[:limit] if limit else out
