"""Context, parse, print and verify for plait modules (builtin, func, arith, scf + the agent, op and xfer dialects)."""

from __future__ import annotations

from io import StringIO

from xdsl.context import Context
from xdsl.dialects.arith import Arith
from xdsl.dialects.builtin import Builtin, ModuleOp
from xdsl.dialects.func import Func
from xdsl.dialects.scf import Scf, WhileOp
from xdsl.ir import Operation
from xdsl.parser import Parser
from xdsl.printer import Printer
from xdsl.utils.exceptions import VerifyException

from plait.ir.dialects.agent import Agent
from plait.ir.dialects.control import verify_control
from plait.ir.dialects.op import Op
from plait.ir.dialects.xfer import Xfer
from plait.ir.errors import IRVerifyError
from plait.ir.location import where

DIALECTS = (Builtin, Func, Arith, Scf, Agent, Op, Xfer)


def context() -> Context:
    """A fresh xDSL context with every dialect a plait module uses loaded."""
    ctx = Context()
    for dialect in DIALECTS:
        ctx.load_dialect(dialect)
    return ctx


def parse_module(text: str) -> ModuleOp:
    """Parse MLIR text (custom or generic form, locations kept) into a module."""
    return Parser(context(), text).parse_module()


class _Printer(Printer):
    """xDSL's printer, less one bug: scf.while's custom form (xDSL 0.74) prints its location after its type,
    in the middle of the op, where the parser cannot read it back; the location still ends the op."""

    def print_operation_type(self, op: Operation) -> None:
        if isinstance(op, WhileOp) and not self.print_generic_format:
            self.print_function_type(op.operand_types, op.result_types)
            return
        super().print_operation_type(op)


def print_module(module: Operation, generic: bool = False, locations: bool = True) -> str:
    """`module` as MLIR text; `generic=True` gives the generic form that upstream MLIR parses.

    With `locations`, every op ends in `loc("file.py":LINE:0)` (the user's source) or `loc(unknown)`.
    """
    out = StringIO()
    _Printer(stream=out, print_generic_format=generic, print_debuginfo=locations).print_op(module)
    out.write("\n")
    return out.getvalue()


def verify_module(module: Operation) -> None:
    """Verify every op, and plait's rules for control flow (plait.ir.dialects.control); raise IRVerifyError
    naming the op, the operand or attribute, and the user's file:line."""
    for op in module.walk():
        try:
            op.verify(verify_nested_ops=False)
            verify_control(op)
        except IRVerifyError:
            raise
        except VerifyException as err:
            message = " ".join(line.strip() for line in str(err).splitlines() if line.strip())
            raise IRVerifyError(f"'{op.name}' {message[:1].lower()}{message[1:]}{where(op)}") from err
