"""One line for a pydantic ValidationError: where the first problem is and what it is (`pools.0.device: ...`)."""

from __future__ import annotations

from pydantic import ValidationError


def first_problem(exc: ValidationError, top: str = "(top level)") -> str:
    """`loc: message` of the first error, the location dotted; `top` names an error at the document's root."""
    first = exc.errors()[0]
    return f"{'.'.join(str(p) for p in first['loc']) or top}: {first['msg']}"


def yaml_line(err: Exception) -> int | None:
    """The 1-based line a YAML parse error points at (PyYAML's problem_mark), or None when it names none."""
    mark = getattr(err, "problem_mark", None)
    return mark.line + 1 if mark is not None else None
