"""The service-level objective an agent must meet: latency percentiles and token timings."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, PositiveFloat, ValidationError

from plait.sdk.errors import PlaitError
from plait.sdk.where import here


class SLAError(PlaitError, ValueError):
    """A plait.SLA with a field that is unknown or not a positive number of milliseconds."""


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

    def __init__(self, **fields: Any) -> None:
        try:
            super().__init__(**fields)
        except ValidationError as err:
            problem = err.errors()[0]
            name = str(problem["loc"][0]) if problem["loc"] else "?"
            known = ", ".join(SLA.model_fields)
            rule = f"plait.SLA has no field {name!r}" if problem["type"] == "extra_forbidden" else \
                f"plait.SLA's {name} must be a number of milliseconds > 0, got {problem['input']!r:.40}"
            raise SLAError(f"{rule}\n  {here()}\n  To fix: use the fields {known}, e.g. "
                           "plait.SLA(p95_ms=2000, ttft_ms=500).") from None

    def __repr__(self) -> str:
        return f"SLA({self})"

    def __str__(self) -> str:
        return ", ".join(f"{k}={v:g}" for k, v in self.model_dump().items() if v is not None)
