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

Sites = dict[str, dict[str, StageWork]]
"""node name -> {stage kind: the planner's StageWork}"""

# node kind -> the stage kinds its lowering makes, in order
STAGES_OF = {"llm": ("prefill", "decode"), "embed": ("encode",), "retrieve": ("search",), "tool": ("tool",),
             "stt": ("encode", "prefill", "decode"), "tts": ("prefill", "decode", "vocode")}


def node_stages(graph: AgentGraph, catalog: Catalog) -> Sites:
    """node name -> {stage kind: StageWork} for every compute node of `graph`, its regions and callees."""
    from plait.ir.pipeline import compile_graph

    works = {s.name: s for s in extract_stages(compile_graph(graph, "ops"), catalog, graph.name).stages}
    counts: dict[str, int] = {}
    out: Sites = {}

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


# the figure a plan records per stage kind, and how to read it from the stage the agent lowers to now
_FIGURE = {"prefill": ("prompt_tokens", lambda w: float(w.spec.tokens or 0)),
           "decode": ("output_tokens", lambda w: w.steps),
           "tool": ("latency_ms", lambda w: w.tool_latency_s * 1e3),
           "search": ("k", lambda w: float(w.spec.k))}


def stale_figures(planned: dict[str, dict[str, float]], sites: Sites) -> list[str]:
    """'stage: figure planned X, declared now Y' for every stage whose key figure changed since the plan."""
    out = []
    for per in sites.values():
        for kind, w in per.items():
            key, now = _FIGURE.get(kind, ("", lambda w: 0.0))
            was = planned.get(w.name, {}).get(key)
            if key and was is not None and abs(was - now(w)) > 0.5 + 1e-6 * abs(was):
                out.append(f"{w.name}: {key} planned {was:g}, declared now {now(w):g}")
    return out
