"""MLIR dialects (agent, op, xfer), graph-to-IR emission, lowering and placement passes."""

from plait.ir.errors import IRVerifyError, UpstreamMLIRError
from plait.ir.location import set_loc, user_loc
from plait.ir.module import context, parse_module, print_module, verify_module

__all__ = ["IRVerifyError", "UpstreamMLIRError", "context", "parse_module", "print_module", "set_loc",
           "user_loc", "verify_module"]
