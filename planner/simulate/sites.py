"""Call sites: which planner stages each node of the traced graph runs, with the OpSpecs the planner costs.

The stage names and OpSpecs come from `plait.planner.grouping.extract_stages` on the lowered module (the
same code the planner uses), so the simulator costs exactly the operators the plan was made for. A node's
stages are found by name: `{kind}:{target}@{file:line}`, with `#n` for the n-th stage of that name in walk
order (a sub-agent called twice), which is the order both walks visit the nodes.
"""

from __future__ import annotations

from plait.planner.catalog import Catalog
from plait.planner.grouping import StageWork, extract_stages
from plait.planner.simulate.errors import SimulateError
from plait.sdk.graph import AgentGraph

# node kind -> the stage kinds its lowering makes, in order
STAGES_OF = {"llm": ("prefill", "decode"), "embed": ("encode",), "retrieve": ("search",), "tool": ("tool",),
             "stt": ("encode", "prefill", "decode"), "tts": ("prefill", "decode", "vocode")}


def node_stages(graph: AgentGraph, catalog: Catalog) -> dict[str, dict[str, StageWork]]:
    """node name -> {stage kind: StageWork} for every compute node of `graph`, its regions and callees."""
    from plait.ir.pipeline import compile_graph

    works = {s.name: s for s in extract_stages(compile_graph(graph, "ops"), catalog, graph.name).stages}
    counts: dict[str, int] = {}
    out: dict[str, dict[str, StageWork]] = {}

    def visit(g: AgentGraph) -> None:
        for node in g.steps:
            for kind in STAGES_OF.get(node.kind, ()):
                base = f"{kind}:{node.target}" + (f"@{node.loc}" if node.loc else "")
                counts[base] = counts.get(base, 0) + 1
                name = base if counts[base] == 1 else f"{base}#{counts[base]}"
                if name not in works:
                    raise SimulateError(f"node %{node.name} ({node.loc}) lowers to no stage named {name!r}; the "
                                        f"planner's stages are {sorted(works)}.\nTo fix: report this as a bug.")
                out.setdefault(node.name, {})[kind] = works[name]
            for region in node.regions.values():
                visit(region)

    visit(graph)
    return out
