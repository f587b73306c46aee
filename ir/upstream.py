"""Check plait's IR with upstream MLIR: load the hand-written IRDL dialects, parse and verify generic text.

Uses the MLIR Python bindings that the torch-mlir wheel carries (`pip install plait[mlir]`); they are
imported lazily, so plait works without them. Unregistered dialects are never allowed: every op must be
builtin, func, or one that the IRDL files under plait/ir/irdl define.
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

from xdsl.ir import Operation

from plait.ir.errors import UpstreamMLIRError
from plait.ir.module import print_module

IRDL_FILES = ("agent.irdl.mlir", "op.irdl.mlir", "xfer.irdl.mlir")


def irdl_text(name: str) -> str:
    """The text of one IRDL file shipped in plait.ir.irdl."""
    return resources.files("plait.ir.irdl").joinpath(name).read_text()


def available() -> bool:
    """Whether upstream MLIR's Python bindings (torch_mlir) can be imported."""
    try:
        import torch_mlir.ir  # noqa: F401
    except ImportError:
        return False
    return True


@functools.cache
def _context() -> Any:
    """An upstream MLIR context with plait's three dialects loaded from IRDL (built once)."""
    try:
        from torch_mlir import ir
        from torch_mlir.dialects import irdl
    except ImportError as err:
        raise UpstreamMLIRError("upstream MLIR's Python bindings are not installed.\n"
                                "To fix: pip install 'plait[mlir]' (the torch-mlir wheel).") from err
    ctx = ir.Context()
    ctx.allow_unregistered_dialects = False
    definitions = ir.Module.parse("\n".join(irdl_text(name) for name in IRDL_FILES), ctx)
    irdl.load_dialects(definitions)
    return ctx


def check_text(text: str) -> str:
    """Parse and verify MLIR text with upstream MLIR; return upstream's own generic print of it.

    Raises UpstreamMLIRError with upstream's diagnostics (each at the user's file:line when the op
    carries one) if upstream rejects the text.
    """
    from torch_mlir import ir

    ctx = _context()
    try:
        with ctx:
            module = ir.Module.parse(text)
            module.operation.verify()
            return str(module.operation.get_asm(print_generic_op_form=True, enable_debug_info=True))
    except ir.MLIRError as err:
        raise UpstreamMLIRError(f"upstream MLIR rejected the module:\n{err}") from err


def check_module(module: Operation) -> str:
    """Print `module` in generic form with locations and check it with upstream MLIR (see check_text)."""
    return check_text(print_module(module, generic=True, locations=True))


NOT_INSTALLED = ("note: upstream MLIR is not installed, so only plait's verifier checked this module "
                 "(pip install 'plait[mlir]' adds upstream's parser and verifier)")
"""The one line `plait ir` and `plait plan` print (to stderr) when upstream cannot check their output."""


def verify_upstream(module: Operation, generic_text: str | None = None) -> str | None:
    """Check `module` with upstream MLIR when its bindings import, else return the one-line NOT_INSTALLED
    note and check nothing. Upstream reads `generic_text` when the caller printed the generic form (so it
    checks exactly what was printed), else the module's generic print (custom forms of IRDL-defined ops
    are xDSL's, which upstream cannot parse). Raises UpstreamMLIRError when upstream rejects it."""
    if not available():
        return NOT_INSTALLED
    if generic_text is None:
        check_module(module)
    else:
        check_text(generic_text)
    return None
