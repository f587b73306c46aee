"""The service-level objective an agent must meet: latency percentiles and token timings."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, PositiveFloat


class SLA(BaseModel):
    """End-to-end latency targets for one request, in milliseconds; unset fields are not constrained.

    >>> plait.SLA(p95_ms=2000)
    SLA(p95_ms=2000)
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    p50_ms: PositiveFloat | None = None
    p95_ms: PositiveFloat | None = None
    ttft_ms: PositiveFloat | None = None
    tpot_ms: PositiveFloat | None = None

    def __repr__(self) -> str:
        return f"SLA({self})"

    def __str__(self) -> str:
        return ", ".join(f"{k}={v:g}" for k, v in self.model_dump().items() if v is not None)
