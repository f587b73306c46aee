"""Source locations: tie an op to the user's file:line (`loc("rag.py":12:0)` in MLIR text)."""

from __future__ import annotations

from typing import TypeVar

from xdsl.dialects.builtin import FileLineColLoc, IntAttr, StringAttr
from xdsl.ir import Operation

OpT = TypeVar("OpT", bound=Operation)


def set_loc(op: OpT, file: str, line: int, column: int = 0) -> OpT:
    """Set `op`'s location to `file:line:column` and return `op` (for chaining at build time).

    Example: `set_loc(LLMCallOp(p, model="m", max_tokens=64), "rag.py", 12)` prints as
    `... loc("rag.py":12:0)` when printed with locations.
    """
    op.location = FileLineColLoc(StringAttr(file), IntAttr(line), IntAttr(column))
    return op


def user_loc(op: Operation) -> str | None:
    """The user's `file:line` for `op`: its own location, else its nearest located ancestor's."""
    current: Operation | None = op
    while current is not None:
        if isinstance(loc := current.location, FileLineColLoc):
            return f"{loc.filename.data}:{loc.line.data}"
        current = current.parent_op()
    return None


def where(op: Operation) -> str:
    """A second line for error messages: `  at rag.py:12 (op.decode)`, or `  in op.decode` unlocated."""
    loc = user_loc(op)
    return f"\n  at {loc} ({op.name})" if loc else f"\n  in {op.name} (no source location)"
