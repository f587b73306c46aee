"""The SDK: decorators that declare agents, and the tracer that captures them as an AgentGraph."""

from plait.sdk.control import branch, loop, map
from plait.sdk.decorators import Agent, Tool, agent, tool
from plait.sdk.dist import Dist
from plait.sdk.errors import LoadError, PlaitError, TraceError
from plait.sdk.graph import AgentGraph, Node, Param
from plait.sdk.sla import SLA
from plait.sdk.steps import embed, gather, llm, prompt, retrieve, stt, tts
from plait.sdk.trace import trace
from plait.sdk.tracer import Sym

__all__ = [
    "SLA", "Agent", "AgentGraph", "Dist", "LoadError", "Node", "Param", "PlaitError", "Sym", "Tool",
    "TraceError", "agent", "branch", "embed", "gather", "llm", "loop", "map", "prompt", "retrieve",
    "stt", "tool", "trace", "tts",
]
