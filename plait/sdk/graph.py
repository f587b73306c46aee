"""AgentGraph: the traced agent as a networkx.MultiDiGraph of typed nodes, with regions for control flow."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Literal

import networkx as nx
from pydantic import BaseModel, ConfigDict, Field, field_serializer, field_validator

from plait.sdk.dist import Dist
from plait.sdk.sla import SLA
from plait.sdk.types import ValueType

NodeKind = Literal["input", "prompt", "llm", "embed", "retrieve", "tool", "stt", "tts",
                   "loop", "branch", "map", "call", "gather", "output"]
NODE_KINDS: tuple[NodeKind, ...] = ("input", "prompt", "llm", "embed", "retrieve", "tool", "stt", "tts",
                                    "loop", "branch", "map", "call", "gather", "output")

Scalar = bool | int | float | str
AttrValue = Dist | bool | int | float | str | list[str] | list[float] | dict[str, Scalar] | None
FORMAT = "plait.agentgraph/1"
DIST_KINDS = ("const", "normal", "uniform")


class Param(BaseModel):
    """One parameter of a graph or region: the name of its `input` node and its type."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    type: ValueType


class Node(BaseModel):
    """One step of an agent: what it does (`kind`, `target`), what it reads and what it yields.

    `inputs` name earlier nodes of the same graph or region, in operand order. `type` is the
    result type (None only for `output`). `regions` holds the sub-graphs of loop, branch,
    map and call nodes. `loc` is the user's "file:line" that made the node.
    """

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    name: str
    kind: NodeKind
    target: str = ""
    inputs: list[str] = Field(default_factory=list)
    attrs: dict[str, AttrValue] = Field(default_factory=dict)
    type: ValueType | None
    loc: str = ""
    regions: dict[str, AgentGraph] = Field(default_factory=dict)

    @field_validator("attrs", mode="before")
    @classmethod
    def _load_dists(cls, value: Any) -> Any:
        """Read planning figures back as Dist (a dict with a Dist kind); other dicts stay dicts."""
        if not isinstance(value, dict):
            return value
        return {k: Dist.model_validate(v) if isinstance(v, dict) and v.get("kind") in DIST_KINDS and "mean" in v else v
                for k, v in value.items()}

    @field_serializer("regions")
    def _dump_regions(self, regions: dict[str, AgentGraph]) -> dict[str, Any]:
        return {key: graph.to_dict() for key, graph in regions.items()}

    @field_validator("regions", mode="before")
    @classmethod
    def _load_regions(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: AgentGraph.from_dict(v) if isinstance(v, dict) else v for k, v in value.items()}
        return value


class AgentGraph(nx.MultiDiGraph):
    """A traced agent (or one region of it): nodes are step names, each holding a `Node`.

    An edge `src -> dst` with key `i` says `dst`'s operand `i` is `src`'s result. Insertion
    order is trace order, which is a topological order. `graph.steps` lists the Nodes;
    `str(graph)` prints them torch.fx style; `to_json`/`from_json` round-trip exactly.

    >>> print(plait.trace(answer))           # examples/rag.py
    agent answer(%question : text) -> text  {sla: p95_ms=2000, ttft_ms=600; qps: 5}
        %question : text = input[target=question]()  # rag.py:19
        ...
    """

    def __init__(self, incoming_graph_data: Any = None, **attr: Any) -> None:
        super().__init__(incoming_graph_data, **attr)
        self.graph.setdefault("name", "")
        self.graph.setdefault("params", [])
        self.graph.setdefault("sla", None)
        self.graph.setdefault("qps", None)
        self.graph.setdefault("source", None)

    # --- metadata -------------------------------------------------------------------------
    @property
    def agent_name(self) -> str:
        """The agent's (or region body function's) name."""
        return str(self.graph["name"])

    @property
    def params(self) -> list[Param]:
        """Parameters in call order; each names an `input` node."""
        return list(self.graph["params"])

    @params.setter
    def params(self, value: list[Param]) -> None:
        self.graph["params"] = list(value)

    @property
    def sla(self) -> SLA | None:
        """The SLA the agent must meet (None for regions and agents without one)."""
        sla = self.graph["sla"]
        return sla if sla is None or isinstance(sla, SLA) else SLA.model_validate(sla)

    @property
    def qps(self) -> float | None:
        """The expected request rate, requests per second."""
        return self.graph["qps"]

    @property
    def source(self) -> str | None:
        """The path of the file that defines the agent."""
        return self.graph["source"]

    # --- nodes ----------------------------------------------------------------------------
    def add(self, node: Node) -> Node:
        """Append `node`; its inputs must already be in this graph."""
        if node.name in self:
            raise ValueError(f"node name {node.name!r} is already used in graph {self.agent_name!r}")
        missing = [i for i in node.inputs if i not in self]
        if missing:
            raise ValueError(f"node %{node.name} reads {missing}, which are not in graph {self.agent_name!r}")
        self.add_node(node.name, node=node)
        for index, src in enumerate(node.inputs):
            self.add_edge(src, node.name, key=index)
        return node

    @property
    def steps(self) -> list[Node]:
        """All nodes of this graph (not of its regions), in trace order."""
        return [data["node"] for _, data in self.nodes(data=True)]

    def step(self, name: str) -> Node:
        """The node called `name`."""
        node: Node = self.nodes[name]["node"]
        return node

    @property
    def output(self) -> Node:
        """The `output` node: its inputs are the graph's (or region's) results."""
        outs = [n for n in self.steps if n.kind == "output"]
        if len(outs) != 1:
            raise ValueError(f"graph {self.agent_name!r} has {len(outs)} output nodes, expected 1")
        return outs[0]

    @property
    def result_types(self) -> list[ValueType]:
        """Types of the results, in order."""
        types = [self.step(name).type for name in self.output.inputs]
        return [t for t in types if t is not None]

    def walk(self, depth: int = 0) -> Iterator[tuple[int, Node]]:
        """Every node with its region depth, regions right after the node that owns them."""
        for node in self.steps:
            yield depth, node
            for region in node.regions.values():
                yield from region.walk(depth + 1)

    def lint(self) -> None:
        """Check the structural rules of docs/agentgraph.md; raise ValueError naming the broken one."""
        names = [n.name for _, n in self.walk()]
        dupes = sorted({n for n in names if names.count(n) > 1})
        problems = [f"node names used twice: {dupes}"] if dupes else []
        problems += self._lint_here()
        if problems:
            raise ValueError("AgentGraph is malformed: " + "; ".join(problems) + "\n" + str(self)
                             + "\nTo fix: build graphs with plait.trace, or from_json on to_json output.")

    def _lint_here(self) -> list[str]:
        problems: list[str] = []
        inputs = {n.name for n in self.steps if n.kind == "input"}
        if {p.name for p in self.params} != inputs:
            problems.append(f"graph {self.agent_name!r}: params {[p.name for p in self.params]} "
                            f"are not its input nodes {sorted(inputs)}")
        try:
            out = self.output
            if self.steps[-1] is not out:
                problems.append(f"graph {self.agent_name!r}: output is not the last node")
        except ValueError as err:
            problems.append(str(err))
        for node in self.steps:
            if (node.type is None) != (node.kind == "output"):
                problems.append(f"%{node.name}: only output nodes have no result type")
            for region in node.regions.values():
                problems += region._lint_here()
        return problems

    # --- views ----------------------------------------------------------------------------
    def __str__(self) -> str:
        from plait.sdk.printer import format_graph

        return format_graph(self)

    def __repr__(self) -> str:
        return f"<AgentGraph {self.agent_name!r}: {len(self)} nodes>"

    def to_dict(self) -> dict[str, Any]:
        """A plain-JSON form of the graph; regions nest inside their nodes."""
        sla = self.sla
        return {"name": self.agent_name, "params": [p.model_dump() for p in self.params],
                "sla": None if sla is None else sla.model_dump(exclude_none=True), "qps": self.qps,
                "source": self.source, "nodes": [n.model_dump(mode="json") for n in self.steps]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AgentGraph:
        """Rebuild a graph from `to_dict` output."""
        graph = cls(name=data["name"], params=[Param.model_validate(p) for p in data["params"]],
                    sla=None if data.get("sla") is None else SLA.model_validate(data["sla"]),
                    qps=data.get("qps"), source=data.get("source"))
        for raw in data["nodes"]:
            graph.add(Node.model_validate(raw))
        return graph

    def to_json(self, indent: int | None = 2) -> str:
        """The graph as JSON (`{"format": "plait.agentgraph/1", ...}`)."""
        return json.dumps({"format": FORMAT, **self.to_dict()}, indent=indent)

    @classmethod
    def from_json(cls, text: str) -> AgentGraph:
        """Rebuild a graph from `to_json` output; `from_json(g.to_json()) == g`."""
        data = json.loads(text)
        if data.get("format") != FORMAT:
            raise ValueError(f"not an AgentGraph JSON document: format is {data.get('format')!r}, "
                             f"expected {FORMAT!r}")
        return cls.from_dict(data)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AgentGraph) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]


Node.model_rebuild()
