"""Draws of the agent's planning figures (plait.Dist): token counts, loop counts, branch arms, map lengths."""

from __future__ import annotations

import random
from typing import Any

from plait.sdk.dist import Dist


def figure(value: Any, default: float = 0.0) -> Dist:
    """A node attribute as a Dist: a Dist (or its JSON dict) as is, a number as a constant, None as `default`."""
    if isinstance(value, Dist):
        return value
    if isinstance(value, dict):
        return Dist.model_validate(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return Dist.const(float(value))
    return Dist.const(default)


def draw(d: Dist, rng: random.Random) -> float:
    """One draw: const is its mean, normal is clipped at 0, uniform is on [lo, hi]."""
    if d.kind == "normal" and d.std > 0:
        return max(0.0, rng.gauss(d.mean, d.std))
    if d.kind == "uniform" and d.lo is not None and d.hi is not None:
        return rng.uniform(d.lo, d.hi)
    return d.mean


def draw_count(d: Dist, rng: random.Random, lo: int = 1, hi: int | None = None) -> int:
    """A draw rounded to a whole count in [lo, hi] (tokens, loop iterations, map elements). A constant that is
    not whole is an expected count: its floor or ceiling, at the odds that keep its mean (expected_iters=2.62
    runs 3 iterations 62 % of the time; rounding ran 3 every time, 15 % more load than planned)."""
    if d.kind == "const" and (frac := d.mean - int(d.mean)) > 1e-9:
        n = max(lo, int(d.mean) + (rng.random() < frac))
        return n if hi is None else min(n, hi)
    n = max(lo, round(draw(d, rng)))
    return n if hi is None else min(n, hi)


def draw_arm(p: list[float], rng: random.Random) -> int:
    """The index of a branch arm drawn with probabilities `p`."""
    u, acc = rng.random(), 0.0
    for i, pi in enumerate(p):
        acc += pi
        if u < acc:
            return i
    return len(p) - 1


def number(value: Any, default: float) -> float:
    """A plain numeric attribute (max_iters, k, dim, template_tokens); a figure's mean; `default` when unset."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return figure(value, default).mean


def items(value: Any) -> list[Any]:
    """A list attribute (a branch's arms or probabilities)."""
    if not isinstance(value, list):
        raise TypeError(f"expected a list attribute, got {value!r}")
    return list(value)
