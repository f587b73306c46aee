"""The placed module: every op carries its device pool, and `xfer` ops move values across pool borders.

The planner tags each op with the stage it belongs to (a `stage` attribute); `PlacePass` maps stages
to pools, gives glue ops the pool of the stage they feed, and puts an xfer.send / xfer.recv pair on
every value that crosses from one pool to another. Control ops (scf loops, branches and maps with their
terminators, func.call, func.return, arith constants) run in the request driver: their pool is `driver`,
and values to and from it travel on the control channel, not through xfer. Ops inside regions are
placed like any other; a value crossing pools is sent and received once, right after the op that makes
it, so the received value dominates every use (in the same block or in regions nested below it).
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, StringAttr
from xdsl.dialects.func import FuncOp
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter

from plait.ir.dialects.xfer import RecvOp, SendOp

DRIVER = "driver"
CONTROL_OPS = ("scf.while", "scf.condition", "scf.index_switch", "scf.for", "scf.yield", "func.call",
               "func.return", "arith.constant", "arith.xori")


def pool_of(op: Operation) -> str | None:
    attr = op.attributes.get("pool")
    return attr.data if isinstance(attr, StringAttr) else None


def stage_of(op: Operation) -> str | None:
    attr = op.attributes.get("stage")
    return attr.data if isinstance(attr, StringAttr) else None


@dataclass(frozen=True)
class PlacePass(ModulePass):
    """Annotate every op with its pool and insert xfer ops at pool borders.

    Options: `pools` maps stage names to pools; `edge_bytes` gives the bytes one transfer between two
    stages moves (the planner's estimate), used for the xfer ops' `bytes`.
    """

    name = "place"
    pools: tuple[tuple[str, str], ...] = ()
    edge_bytes: tuple[tuple[str, str, int], ...] = ()

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        pools = dict(self.pools)
        for func in op.ops:
            if isinstance(func, FuncOp):
                self._assign(func, pools)
        for func in op.ops:
            if isinstance(func, FuncOp):
                self._insert_transfers(func)

    def _assign(self, func: FuncOp, pools: dict[str, str]) -> None:
        ops = [one for one in func.walk() if one is not func]
        for one in ops:
            stage = stage_of(one)
            if one.name in CONTROL_OPS:
                one.attributes["pool"] = StringAttr(DRIVER)
            elif stage is not None and stage in pools:
                one.attributes["pool"] = StringAttr(pools[stage])
        # Glue ops (tokenize, format, box, ...) run with the stage they feed when all their consumers run in
        # one pool; otherwise (a transcript feeding a tool and an LLM) with the stage that made their input,
        # so a value crosses pools once per stage edge, as the planner costed it.
        for one in reversed(ops):
            if pool_of(one) is None:
                users = [u.operation for r in one.results for u in r.uses]
                placed = [u for u in users if pool_of(u) not in (None, DRIVER)]
                if placed and len({pool_of(u) for u in placed}) == 1:
                    self._follow(one, placed[0])
        for one in ops:
            if pool_of(one) is None:
                producers = [v.owner for v in one.operands if isinstance(v.owner, Operation)]
                placed = [d for d in producers if pool_of(d) not in (None, DRIVER)]
                if placed:
                    self._follow(one, placed[0])
                else:
                    one.attributes["pool"] = StringAttr(DRIVER)

    @staticmethod
    def _follow(glue: Operation, neighbour: Operation) -> None:
        glue.attributes["pool"] = StringAttr(pool_of(neighbour) or DRIVER)
        if (stage := stage_of(neighbour)) is not None:
            glue.attributes["stage"] = StringAttr(stage)

    def _insert_transfers(self, func: FuncOp) -> None:
        sizes = {(a, b): n for a, b, n in self.edge_bytes}
        received: dict[tuple[SSAValue, str], SSAValue] = {}
        for user in [one for one in func.walk() if one is not func]:
            dst = pool_of(user)
            if dst is None or dst == DRIVER or user.name.startswith("xfer."):
                continue
            for index, value in enumerate(user.operands):
                producer = value.owner
                if not isinstance(producer, Operation):
                    continue
                src = pool_of(producer)
                if src is None or src in (DRIVER, dst):
                    continue
                key = (value, dst)
                if key not in received:
                    nbytes = sizes.get((stage_of(producer) or "", stage_of(user) or ""), 0)
                    send = SendOp(value, src=src, dst=dst, nbytes=int(nbytes))
                    send.attributes["pool"] = StringAttr(src)
                    Rewriter.insert_op(send, InsertPoint.after(producer))
                    recv = RecvOp(send)
                    recv.attributes["pool"] = StringAttr(dst)
                    Rewriter.insert_op(recv, InsertPoint.after(send))
                    received[key] = recv.result
                user.operands[index] = received[key]
