"""One line for a pydantic ValidationError: where the first problem is and what it is (`pools.0.device: ...`)."""

from __future__ import annotations

from pydantic import ValidationError


def first_problem(exc: ValidationError, top: str = "(top level)") -> str:
    """`loc: message` of the first error, the location dotted; `top` names an error at the document's root."""
    first = exc.errors()[0]
    return f"{'.'.join(str(p) for p in first['loc']) or top}: {first['msg']}"
