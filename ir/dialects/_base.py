"""Helpers shared by the dialects: attribute builders, the verify-error raiser, type printing."""

from __future__ import annotations

from io import StringIO
from typing import NoReturn

from xdsl.dialects.builtin import FloatAttr, IntegerAttr, StringAttr
from xdsl.ir import Attribute, Operation
from xdsl.printer import Printer

from plait.ir.errors import IRVerifyError
from plait.ir.location import where


def i64(value: int | IntegerAttr) -> IntegerAttr:
    """An `i64` integer attribute (counts and limits: max_tokens, k, max_iters)."""
    return value if isinstance(value, IntegerAttr) else IntegerAttr(value, 64)


def f64(value: float | FloatAttr) -> FloatAttr:
    """An `f64` float attribute (planning figures: expected counts, p95s, probabilities, ms)."""
    return value if isinstance(value, FloatAttr) else FloatAttr(float(value), 64)


def string(value: str | StringAttr) -> StringAttr:
    return value if isinstance(value, StringAttr) else StringAttr(value)


def num(attr: Attribute) -> float:
    """The Python number held by an IntegerAttr or FloatAttr."""
    assert isinstance(attr, IntegerAttr | FloatAttr)
    return attr.value.data


def fail(op: Operation, message: str) -> NoReturn:
    """Raise IRVerifyError: `'op.decode' <message>` then the user's file:line."""
    raise IRVerifyError(f"'{op.name}' {message}{where(op)}")


def show(attr: Attribute) -> str:
    """`attr` as MLIR text (`!agent.kv<"llama-8b">`), for error messages."""
    out = StringIO()
    Printer(stream=out).print_attribute(attr)
    return out.getvalue()
