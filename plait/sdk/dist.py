"""Planning figures: a number or a simple distribution (constant, normal, uniform)."""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Literal

from pydantic import BaseModel, ConfigDict, model_validator

from plait.sdk.errors import PlaitError
from plait.sdk.where import here


class FigureError(PlaitError, ValueError):
    """A planning figure (plait.Dist) the SDK cannot use: negative, not finite, or not a number."""


def _checked(call: str, **numbers: object) -> None:
    """Raise a one-line FigureError unless every number is finite and >= 0."""
    for name, value in numbers.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
            raise FigureError(f"{call}'s {name} must be a finite number >= 0, got {value!r:.40}\n  {here()}\n"
                              f"  To fix: pass numbers >= 0, e.g. plait.Dist.normal(300, 50).")


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


class Dist(BaseModel):
    """An expected figure (tokens, ms, seconds, iterations): `mean`, spread, and a p95 for planning.

    Build one with `Dist.const(900)`, `Dist.normal(900, 120)` or `Dist.uniform(2, 8)`; a plain
    number given to the SDK becomes `Dist.const(number)`. Normal draws are clipped at 0.

    >>> Dist.normal(100, 10).p95
    116.44853626951472
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["const", "normal", "uniform"]
    mean: float
    std: float = 0.0
    lo: float | None = None
    hi: float | None = None

    @model_validator(mode="after")
    def _check(self) -> Dist:
        if not all(math.isfinite(v) for v in (self.mean, self.std)) or self.mean < 0 or self.std < 0:
            raise ValueError(f"a planning figure must be finite and >= 0, got {self}")
        if self.kind == "uniform" and (self.lo is None or self.hi is None or not 0 <= self.lo <= self.hi):
            raise ValueError(f"uniform(lo, hi) needs 0 <= lo <= hi, got lo={self.lo}, hi={self.hi}")
        return self

    @staticmethod
    def const(value: float) -> Dist:
        """Exactly `value`."""
        _checked("plait.Dist.const", value=value)
        return Dist(kind="const", mean=value)

    @staticmethod
    def normal(mean: float, std: float) -> Dist:
        """Normally distributed around `mean` with standard deviation `std`."""
        _checked("plait.Dist.normal", mean=mean, std=std)
        return Dist(kind="normal", mean=mean, std=std)

    @staticmethod
    def uniform(lo: float, hi: float) -> Dist:
        """Uniform on [lo, hi]."""
        _checked("plait.Dist.uniform", lo=lo, hi=hi)
        if lo > hi:
            raise FigureError(f"plait.Dist.uniform needs lo <= hi, got lo={lo:g}, hi={hi:g}\n  {here()}\n"
                              "  To fix: give the smaller bound first: plait.Dist.uniform(2, 8).")
        return Dist(kind="uniform", mean=(lo + hi) / 2, std=(hi - lo) / math.sqrt(12), lo=lo, hi=hi)

    @staticmethod
    def of(value: float | Dist) -> Dist:
        """`value` itself when it is a Dist, else a constant."""
        return value if isinstance(value, Dist) else Dist.const(float(value))

    def scaled(self, factor: float) -> Dist:
        """This figure times `factor` (>= 0), of the same kind: seconds of speech to tokens, say."""
        if self.kind == "uniform" and self.lo is not None and self.hi is not None:
            return Dist.uniform(self.lo * factor, self.hi * factor)
        if self.kind == "normal":
            return Dist.normal(self.mean * factor, self.std * factor)
        return Dist.const(self.mean * factor)

    def quantile(self, q: float) -> float:
        """The q-quantile (0 < q < 1)."""
        if self.kind == "normal" and self.std > 0:
            return max(0.0, NormalDist(self.mean, self.std).inv_cdf(q))
        if self.kind == "uniform" and self.lo is not None and self.hi is not None:
            return self.lo + q * (self.hi - self.lo)
        return self.mean

    @property
    def p95(self) -> float:
        """The 95th percentile."""
        return self.quantile(0.95)

    def __repr__(self) -> str:
        return f"Dist.{self.kind}({str(self).partition('(')[2].rstrip(')') or str(self)})"

    def __str__(self) -> str:
        if self.kind == "normal":
            return f"normal({_num(self.mean)}, {_num(self.std)})"
        if self.kind == "uniform":
            return f"uniform({_num(self.lo or 0.0)}, {_num(self.hi or 0.0)})"
        return _num(self.mean)
