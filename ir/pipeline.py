"""The compilation pipeline: an AgentGraph to the module of one stage (`agent`, then `ops`), verified."""

from __future__ import annotations

from collections.abc import Sequence

from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import ModulePass

from plait.ir.emit import emit
from plait.ir.errors import IRVerifyError
from plait.ir.module import context, verify_module
from plait.ir.passes import get_all_passes
from plait.sdk.errors import PlaitError
from plait.sdk.graph import AgentGraph

STAGES = ("agent", "ops")
"""The stages `plait ir --stage` prints, in pipeline order."""
LOWERING = ("lower-agent-to-op", "drop-dead-steps", "canonicalize", "cse", "prefix-reuse")
"""The passes from the agent stage to the ops stage."""


class IRPassError(PlaitError):
    """A pass failed, or left a module that does not verify."""


class IRStageError(PlaitError):
    """An unknown stage name was asked for."""


def check_stage(stage: str) -> str:
    """`stage` when it is one of STAGES; else IRStageError listing them."""
    if stage not in STAGES:
        raise IRStageError(f"unknown stage {stage!r}; the stages are: {', '.join(STAGES)}\n"
                           f"  To fix: pass --stage {STAGES[0]} or --stage {STAGES[-1]}.")
    return stage


def passes(names: Sequence[str]) -> list[ModulePass]:
    """Instances (default options) of the registered passes `names`."""
    registry = get_all_passes()
    unknown = [n for n in names if n not in registry]
    if unknown:
        raise IRPassError(f"unknown pass {unknown[0]!r}; the passes are: {', '.join(sorted(registry))}")
    return [registry[n]()() for n in names]


def run_passes(module: ModuleOp, pipeline: Sequence[ModulePass]) -> ModuleOp:
    """Apply `pipeline` to `module` in place, verifying after each pass; failures are IRPassError."""
    ctx = context()
    for one in pipeline:
        try:
            one.apply(ctx, module)
        except PlaitError:
            raise
        except Exception as err:  # a bug in a pass: a short message, the cause chained for --debug runs
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise IRPassError(f"pass '{one.name}' failed: {type(err).__name__}: {first}\n"
                              "  This is a bug in plait's compiler; please report it with the agent file.") from err
        try:
            verify_module(module)
        except IRVerifyError as err:
            raise IRPassError(f"pass '{one.name}' left a module that does not verify:\n{err}") from err
    return module


def lower(module: ModuleOp) -> ModuleOp:
    """The ops stage of an agent-stage module: the LOWERING passes, in place."""
    return run_passes(module, passes(LOWERING))


def compile_graph(graph: AgentGraph, stage: str = "ops") -> ModuleOp:
    """The verified module of `graph` at `stage` ("agent" or "ops").

    Raises IRStageError for an unknown stage, IRVerifyError (naming the op, the operand and the user's
    file:line) when the emitted module breaks a dialect rule, IRPassError when a pass fails.
    """
    check_stage(stage)
    module = emit(graph)
    verify_module(module)
    if stage == "ops":
        lower(module)
    return module
