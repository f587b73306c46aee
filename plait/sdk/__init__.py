"""The SDK: decorators that declare agents, and the tracer that captures them as an AgentGraph."""

from plait.sdk.errors import LoadError, PlaitError, TraceError

__all__ = ["LoadError", "PlaitError", "TraceError"]
