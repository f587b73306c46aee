"""Token estimates for values, used when the user gives no figure (e.g. an LLM's prompt_tokens)."""

from __future__ import annotations

from typing import cast

from plait.sdk.dist import Dist
from plait.sdk.graph import AgentGraph, Node

TEXT_PARAM_TOKENS = 64
"""Assumed size of a text parameter of an agent (a user question), in tokens."""
CHARS_PER_TOKEN = 4
"""Characters per token for template text."""


def _mean(node: Node, key: str) -> float:
    value = node.attrs.get(key)
    return value.mean if isinstance(value, Dist) else 0.0


def node_tokens(graph: AgentGraph, node: Node, known: dict[str, float] | None = None) -> float:
    """Expected size in tokens of `node`'s result (0 for vec, audio and bool values).

    `known` gives sizes of parameters (region parameters carry the size of what feeds them).
    """
    known = known or {}
    if node.type in ("vec", "audio", "bool"):
        return 0.0
    ins = [graph.step(i) for i in node.inputs]
    if node.kind == "input":
        return known.get(node.name, TEXT_PARAM_TOKENS)
    if node.kind in ("llm", "tool", "stt"):
        return _mean(node, "output_tokens")
    if node.kind == "retrieve":
        return float(node.attrs["k"]) * _mean(node, "doc_tokens")  # type: ignore[arg-type]
    if node.kind in ("prompt", "gather"):
        fixed = float(node.attrs.get("template_tokens", 0))  # type: ignore[arg-type]
        return fixed + sum(node_tokens(graph, i, known) for i in ins)
    if node.kind == "map":
        return _mean(node, "expected_len") * graph_tokens(node.regions["body"], known)
    if node.kind == "loop":  # the body returns (done, value)
        return graph_tokens(node.regions["body"], known, index=-1)
    if node.kind == "call":
        return graph_tokens(node.regions["callee"], known)
    if node.kind == "branch":
        probs = cast(list[float], node.attrs["p"])
        return sum(p * graph_tokens(r, known) for p, r in zip(probs, node.regions.values(), strict=True))
    return 0.0


def graph_tokens(graph: AgentGraph, known: dict[str, float] | None = None, index: int = 0) -> float:
    """Expected size in tokens of a graph's (or region's) result number `index`."""
    return node_tokens(graph, graph.step(graph.output.inputs[index]), known)
