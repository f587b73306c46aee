"""What a worker does with a program step: find the step's kernel callable in the registry, build it, load it.

    kernel = instantiate(step, program, KernelContext(indexes={"wiki": Path("wiki.index")}))
    kernel.load()                       # weights, the index, the user's tool: once per worker
    out = kernel(*inputs)               # one call per request (or per batch, for batchable kernels)

Every kernel class takes `(step, context)` through its `from_step` and has `load()` and `__call__`; the
registry row's `impl` names it as `module:Class`, imported only here, so the registry stays free of torch.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from plait.codegen.errors import CodegenError
from plait.codegen.program import Program, Step


class RuntimeKernel(Protocol):
    def load(self) -> None: ...

    def __call__(self, *inputs: Any, **kwargs: Any) -> Any: ...


@dataclass(frozen=True)
class KernelContext:
    """What a worker knows that the program does not: where checkpoints and indexes live, and its device.

    checkpoints: model name -> a local folder (config.json, model.safetensors, tokenizer.json); a model with
    none runs with random weights at the catalog's shapes (and says so). indexes: index name -> the folder
    `plait index build` wrote. source: the agent file (FILE:AGENT), where the user's tools are imported from.
    """

    checkpoints: dict[str, Path] = field(default_factory=dict)
    indexes: dict[str, Path] = field(default_factory=dict)
    device: str = "cpu"
    source: str = ""
    seed: int = 0


def kernel_class(kernel_name: str) -> type:
    """The class registered for `kernel_name` (a registry row's `impl`); CodegenError when it has none."""
    from plait.codegen.kernels import BY_NAME

    row = BY_NAME.get(kernel_name)
    if row is None or row.impl is None:
        what = "is not a kernel" if row is None else "is run by the scheduler itself, not by a kernel"
        raise CodegenError(f"{kernel_name!r} {what}\n  To fix: give a step of a program that "
                           "`plait ir FILE:AGENT --stage program` wrote.")
    module, _, name = row.impl.partition(":")
    return getattr(importlib.import_module(module), name)   # type: ignore[no-any-return]


def instantiate(step: Step, program: Program | None = None, context: KernelContext | None = None) -> RuntimeKernel:
    """The kernel that runs `step` (not loaded yet: call `load()` once, then call it per request)."""
    context = context or KernelContext(source=program.source if program is not None else "")
    if program is not None and not context.source:
        context = KernelContext(context.checkpoints, context.indexes, context.device, program.source, context.seed)
    return kernel_class(step.kernel).from_step(step, context)   # type: ignore[attr-defined,no-any-return]
