"""Context, parse, print and verify for plait modules (builtin + func + the agent, op and xfer dialects)."""

from __future__ import annotations

from io import StringIO

from xdsl.context import Context
from xdsl.dialects.builtin import Builtin, ModuleOp
from xdsl.dialects.func import Func
from xdsl.ir import Operation
from xdsl.parser import Parser
from xdsl.printer import Printer
from xdsl.utils.exceptions import VerifyException

from plait.ir.dialects.agent import Agent
from plait.ir.dialects.op import Op
from plait.ir.dialects.xfer import Xfer
from plait.ir.errors import IRVerifyError
from plait.ir.location import where

DIALECTS = (Builtin, Func, Agent, Op, Xfer)


def context() -> Context:
    """A fresh xDSL context with every dialect a plait module uses loaded."""
    ctx = Context()
    for dialect in DIALECTS:
        ctx.load_dialect(dialect)
    return ctx


def parse_module(text: str) -> ModuleOp:
    """Parse MLIR text (custom or generic form, locations kept) into a module."""
    return Parser(context(), text).parse_module()


def print_module(module: Operation, generic: bool = False, locations: bool = True) -> str:
    """`module` as MLIR text; `generic=True` gives the generic form that upstream MLIR parses.

    With `locations`, every op ends in `loc("file.py":LINE:0)` (the user's source) or `loc(unknown)`.
    """
    out = StringIO()
    Printer(stream=out, print_generic_format=generic, print_debuginfo=locations).print_op(module)
    out.write("\n")
    return out.getvalue()


def verify_module(module: Operation) -> None:
    """Verify every op; raise IRVerifyError naming the op, the operand or attribute, and the user's file:line."""
    for op in module.walk():
        try:
            op.verify(verify_nested_ops=False)
        except IRVerifyError:
            raise
        except VerifyException as err:
            message = " ".join(line.strip() for line in str(err).splitlines() if line.strip())
            raise IRVerifyError(f"'{op.name}' {message[:1].lower()}{message[1:]}{where(op)}") from err
