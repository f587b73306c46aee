"""The `xfer` dialect: move a value between two device pools (placement inserts these at pool borders).

A transfer is a pair: `xfer.send` in the source pool's program yields a `!xfer.handle`, and `xfer.recv`
in the destination pool's program turns that handle back into the value. Before the module is split per
pool the handle keeps the data dependence explicit; after the split it names the channel.
"""

from __future__ import annotations

from xdsl.dialects.builtin import IntegerAttr, StringAttr
from xdsl.ir import Attribute, Dialect, Operation, ParametrizedAttribute, SSAValue, TypeAttribute
from xdsl.irdl import (
    IRDLOperation,
    attr_def,
    irdl_attr_definition,
    irdl_op_definition,
    operand_def,
    result_def,
)

from plait.ir.dialects._base import fail, i64, num, show
from plait.ir.dialects.agent import ToolValue


@irdl_attr_definition
class HandleType(ParametrizedAttribute, TypeAttribute):
    """A value in flight from one pool to another."""

    name = "xfer.handle"


class TransferOpBase(IRDLOperation):
    """One end of a transfer of `bytes` bytes from pool `src` to pool `dst`."""

    src = attr_def(StringAttr)
    dst = attr_def(StringAttr)
    bytes = attr_def(IntegerAttr)

    @staticmethod
    def route(src: str, dst: str, nbytes: int) -> dict[str, Attribute]:
        return {"src": StringAttr(src), "dst": StringAttr(dst), "bytes": i64(nbytes)}

    def verify_(self) -> None:
        if self.src == self.dst:
            fail(self, f"moves a value from pool {self.src.data!r} to itself; src and dst must differ")
        if (n := num(self.bytes)) < 0:
            fail(self, f"attribute 'bytes' must be >= 0, got {n}")


@irdl_op_definition
class SendOp(TransferOpBase):
    """Start sending `value` to pool `dst` (runs in pool `src`)."""

    name = "xfer.send"
    value = operand_def(ToolValue)
    handle = result_def(HandleType)
    assembly_format = "$value attr-dict `:` type($value)"

    def __init__(self, value: SSAValue | Operation, *, src: str, dst: str, nbytes: int):
        super().__init__(operands=[value], result_types=[HandleType()], attributes=self.route(src, dst, nbytes))


@irdl_op_definition
class RecvOp(TransferOpBase):
    """Receive the value that the `xfer.send` of `handle` sent (runs in pool `dst`)."""

    name = "xfer.recv"
    handle = operand_def(HandleType)
    result = result_def(ToolValue)
    assembly_format = "$handle attr-dict `:` type($result)"

    def __init__(self, handle: SSAValue | Operation, result_type: Attribute | None = None, *,
                 src: str | None = None, dst: str | None = None, nbytes: int | None = None):
        """Receive from `handle`; type and route default to those of the send that made it."""
        send = SSAValue.get(handle).owner
        if isinstance(send, SendOp):
            result_type = result_type or send.value.type
            src, dst = src or send.src.data, dst or send.dst.data
            nbytes = int(num(send.bytes)) if nbytes is None else nbytes
        assert result_type is not None and src is not None and dst is not None and nbytes is not None, \
            "xfer.recv needs result_type, src, dst and nbytes unless `handle` comes from an xfer.send"
        super().__init__(operands=[handle], result_types=[result_type],
                         attributes=self.route(src, dst, int(nbytes)))

    def verify_(self) -> None:
        super().verify_()
        if not isinstance(send := self.handle.owner, SendOp):
            return
        for name in ("src", "dst", "bytes"):
            if send.attributes[name] != self.attributes[name]:
                fail(self, f"attribute '{name}' is {show(self.attributes[name])}, but its xfer.send has "
                           f"{show(send.attributes[name])}")
        if self.result.type != send.value.type:
            fail(self, f"result has type {show(self.result.type)}, but its xfer.send sends "
                       f"{show(send.value.type)}")


Xfer = Dialect(
    "xfer",
    [SendOp, RecvOp],
    [HandleType],
)
