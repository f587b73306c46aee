"""Drop steps whose results nothing reads: pure ops, and model calls (they sample, but change nothing else).

canonicalize drops dead pure ops; an LLM, speech or decode call is not pure (two calls give two answers,
so cse must keep both), yet an unread one has no effect but its cost, so this pass drops it too. Tool
calls stay: a tool may act on the world. Control flow stays.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation
from xdsl.passes import ModulePass
from xdsl.traits import Pure

from plait.ir.dialects.agent import LLMFiguresBase
from plait.ir.dialects.op import DecodeOp

SAMPLING = (LLMFiguresBase, DecodeOp)
"""Ops with no effect but their answer: agent.llm_call, agent.stt, agent.tts, op.decode."""


def dead(op: Operation) -> bool:
    """Whether `op` makes values that nothing reads and has no effect beyond them."""
    if not op.results or any(r.uses for r in op.results) or op.regions:
        return False
    return isinstance(op, SAMPLING) or op.has_trait(Pure)


@dataclass(frozen=True)
class DropDeadStepsPass(ModulePass):
    """Erase dead steps (see `dead`) until none is left."""

    name = "drop-dead-steps"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        changed = True
        while changed:
            changed = False
            for one in reversed(list(op.walk())):
                if dead(one):
                    one.detach()
                    one.erase()
                    changed = True
