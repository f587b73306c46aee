"""Passes over plait modules (lowering agent -> op, dead steps, prefix reuse), registered lazily by kebab-case name."""

from __future__ import annotations

from collections.abc import Callable

from xdsl.passes import ModulePass


def _lower_agent_to_op() -> type[ModulePass]:
    from plait.ir.passes.lower_agent import LowerAgentToOpPass

    return LowerAgentToOpPass


def _drop_dead_steps() -> type[ModulePass]:
    from plait.ir.passes.dead_steps import DropDeadStepsPass

    return DropDeadStepsPass


def _prefix_reuse() -> type[ModulePass]:
    from plait.ir.passes.prefix_reuse import PrefixReusePass

    return PrefixReusePass


def _canonicalize() -> type[ModulePass]:
    from xdsl.transforms.canonicalize import CanonicalizePass

    return CanonicalizePass


def _cse() -> type[ModulePass]:
    from xdsl.transforms.common_subexpression_elimination import CommonSubexpressionElimination

    return CommonSubexpressionElimination


def get_all_passes() -> dict[str, Callable[[], type[ModulePass]]]:
    """Pass name -> a function that imports and returns the pass class."""
    return {"lower-agent-to-op": _lower_agent_to_op, "drop-dead-steps": _drop_dead_steps, "canonicalize": _canonicalize,
            "cse": _cse, "prefix-reuse": _prefix_reuse}
