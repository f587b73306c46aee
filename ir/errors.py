"""IRVerifyError: a plait module failed verification; names the op, the operand and the user's file:line."""

from __future__ import annotations

from xdsl.utils.exceptions import VerifyException

from plait.sdk.errors import PlaitError


class IRVerifyError(PlaitError, VerifyException):
    """An op of a plait module broke a rule of its dialect (also an xDSL `VerifyException`)."""


class UpstreamMLIRError(PlaitError):
    """Upstream MLIR rejected what plait printed; the message carries upstream's diagnostics."""
