"""The text view of an AgentGraph: one torch.fx-style line per node, regions indented."""

from __future__ import annotations

from typing import TYPE_CHECKING

from plait.sdk.dist import Dist

if TYPE_CHECKING:
    from plait.sdk.graph import AgentGraph, AttrValue, Node

HIDDEN_ATTRS = ("template", "module")
"""Attributes too long for one line (and empty lists and dicts) are not printed; `to_json()` has them all."""
INDENT = "    "


def format_value(value: AttrValue) -> str:
    """An attribute value as printed: numbers plain, Dists as normal(m, s), lists in brackets."""
    if isinstance(value, Dist):
        return str(value)
    if isinstance(value, bool) or value is None:
        return str(value).lower()
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else f"{value:g}"
    if isinstance(value, str):
        return repr(value) if len(value) <= 40 else repr(value[:37] + "...")
    if isinstance(value, list):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {format_value(v)}" for k, v in value.items()) + "}"
    return str(value)


def format_node(node: Node) -> str:
    """`%name : type = kind[target=...](%a, %b) {k=v, ...}  # file:line`, or `return %a`."""
    args = ", ".join(f"%{i}" for i in node.inputs)
    if node.kind == "output":
        return f"return {args}" if args else "return"
    target = f"[target={node.target}]" if node.target else ""
    attrs = ", ".join(f"{k}={format_value(v)}" for k, v in node.attrs.items()
                      if k not in HIDDEN_ATTRS and v not in ({}, []))
    line = f"%{node.name} : {node.type} = {node.kind}{target}({args})"
    if attrs:
        line += f" {{{attrs}}}"
    return line + (f"  # {node.loc}" if node.loc else "")


def _header(graph: AgentGraph) -> str:
    params = ", ".join(f"%{p.name} : {p.type}" for p in graph.params)
    results = ", ".join(graph.result_types) or "()"
    facts = []
    if graph.sla is not None:
        facts.append(f"sla: {graph.sla}")
    if graph.qps is not None:
        facts.append(f"qps: {format_value(float(graph.qps))}")
    return f"({params}) -> {results}" + (f"  {{{'; '.join(facts)}}}" if facts else "")


def _lines(graph: AgentGraph, depth: int) -> list[str]:
    lines = []
    for node in graph.steps:
        lines.append(INDENT * depth + format_node(node))
        for key, region in node.regions.items():
            lines.append(INDENT * (depth + 1) + f"^{key}: {region.agent_name}{_header(region)}")
            lines.extend(_lines(region, depth + 2))
    return lines


def format_graph(graph: AgentGraph) -> str:
    """The whole graph: a header line `agent NAME(%p : type) -> type {sla; qps}`, then its nodes."""
    return "\n".join([f"agent {graph.agent_name}{_header(graph)}", *_lines(graph, 1)])
