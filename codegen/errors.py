"""The errors codegen raises: a placed module it cannot turn into device programs, or a model with no kernel."""

from __future__ import annotations

from plait.sdk.errors import PlaitError


class CodegenError(PlaitError):
    """The placed module and the plan disagree, or a program file cannot be read."""


class NoKernelError(CodegenError):
    """An op of the placed module has no kernel to run it yet (or its model is one no kernel serves)."""


class CheckpointError(CodegenError, ValueError):
    """A checkpoint's config.json disagrees with the catalog's architecture for the model it is given for."""


class StructuredOutputTruncated(CodegenError):
    """A schema-constrained LLM call hit max_tokens before its JSON was complete."""
