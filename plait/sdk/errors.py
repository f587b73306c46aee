"""User-facing errors: each says what rule broke, where, and how to fix it."""

from __future__ import annotations


class PlaitError(Exception):
    """An error caused by the user's input (an agent, a file, an option).

    The CLI prints its message without a traceback and exits with status 2.
    The message's first line states the rule; later lines give the place and the fix.
    """


class TraceError(PlaitError, ValueError):
    """The agent cannot be traced: a rule of symbolic tracing was broken."""


class LoadError(PlaitError):
    """FILE:AGENT could not be loaded (missing file, syntax error, unknown agent)."""
