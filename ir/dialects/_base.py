"""Helpers shared by the dialects: attribute builders, the verify-error raiser, symbol signatures."""

from __future__ import annotations

from collections.abc import Sequence
from io import StringIO
from typing import NoReturn

from xdsl.dialects.builtin import FloatAttr, FunctionType, IntegerAttr, ModuleOp, StringAttr, SymbolRefAttr
from xdsl.dialects.func import FuncOp
from xdsl.ir import Attribute, Operation
from xdsl.printer import Printer
from xdsl.traits import SymbolTable

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


def check_figures(op: Operation, mean: str, p95: str, limit: str | None = None) -> None:
    """Check 0 <= mean <= p95 (<= limit) for the named attributes of `op`."""
    m, p = num(op.attributes[mean]), num(op.attributes[p95])
    if m < 0:
        fail(op, f"attribute '{mean}' must be >= 0, got {m}")
    if p < m:
        fail(op, f"attribute '{p95}' ({p}) must be >= '{mean}' ({m})")
    if limit is not None and p > (lim := num(op.attributes[limit])):
        fail(op, f"attribute '{p95}' ({p}) must be <= '{limit}' ({lim})")


def callee_type(op: Operation, symbol: SymbolRefAttr, what: str) -> FunctionType | None:
    """The function type of the func.func that `symbol` names, or None while `op` is outside a module.

    Fails if the module has no such function.
    """
    anchor: Operation | None = op
    while anchor is not None and not isinstance(anchor, ModuleOp):
        anchor = anchor.parent_op()
    if anchor is None:
        return None
    target = SymbolTable.lookup_symbol(op, symbol)
    if not isinstance(target, FuncOp):
        fail(op, f"{what} @{symbol.root_reference.data} is not a func.func in this module")
    return target.function_type


def check_signature(op: Operation, symbol: SymbolRefAttr, what: str,
                    inputs: Sequence[Attribute], outputs: Sequence[Attribute]) -> None:
    """Fail unless @symbol has type (inputs) -> (outputs)."""
    ftype = callee_type(op, symbol, what)
    if ftype is None:
        return
    want = FunctionType.from_lists(list(inputs), list(outputs))
    if ftype != want:
        fail(op, f"{what} @{symbol.root_reference.data} has type {show(ftype)}, but the op needs {show(want)}")


def show(attr: Attribute) -> str:
    """`attr` as MLIR text (`!agent.kv<"llama-8b">`), for error messages."""
    out = StringIO()
    Printer(stream=out).print_attribute(attr)
    return out.getvalue()
