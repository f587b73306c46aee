"""Helpers of the runtime benchmarks (dispatch_hop.py, transfer_throughput.py): plan a bench agent onto a
given number of tool pools, and nearest-rank percentiles.

The planner gives every tool call site a pool of its own (planner/contract.py), so a 100-step chain would be
100 worker processes. The benchmarks want every step of one tool in one pool (two pools: every hop crosses a
process, between the same two processes), so `plan_grouped` plans the agent as `plait plan` does and then
merges the pools of the call sites of one group: the placed module's `pool` attributes and plan.json's pools
are rewritten together, and the device programs are built from them as `plait run --plan` builds them.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def plan_grouped(target: str, group_of_tool: dict[str, str]) -> tuple[Any, list[Any]]:
    """(the traced graph, its device programs) for FILE:AGENT, with every call site of the tools in one group
    in one pool (named after the group's first pool). Every tool of the agent must be in `group_of_tool`."""
    from xdsl.dialects.builtin import StringAttr

    from plait.cli._agent import traced
    from plait.codegen.build import build_programs
    from plait.planner.catalog import load_catalog
    from plait.planner.planning import plan_agent

    graph = traced(target)
    result = plan_agent(graph, source=target, sweep_points=0)
    first: dict[str, Any] = {}
    rename: dict[str, str] = {}
    for pool in result.plan.pools:
        if pool.kind != "tool":
            raise ValueError(f"{target}: pool {pool.id} runs {pool.kind}; plan_grouped merges tool pools only")
        tool = pool.call_sites[0].stage.split(":", 1)[1].split("@")[0]
        group = group_of_tool[tool]
        first.setdefault(group, pool)
        rename[pool.id] = first[group].id
    pools = [p.model_copy(update={"call_sites": [s for q in result.plan.pools if rename[q.id] == p.id
                                                 for s in q.call_sites]}) for p in first.values()]
    for op in result.placed.walk():   # `pool`, and xfer ops' `src`/`dst`
        for name, attr in list(op.attributes.items()):
            if isinstance(attr, StringAttr) and attr.data in rename:
                op.attributes[name] = StringAttr(rename[attr.data])
    plan = result.plan.model_copy(update={"pools": pools})
    return graph, build_programs(result.placed, plan, load_catalog())


def percentile(values: list[float], q: float) -> float:
    """Nearest rank: a measured value, not an interpolation."""
    xs = sorted(values)
    return xs[min(len(xs) - 1, max(0, round(q * len(xs) + 0.5) - 1))]


def machine() -> dict[str, Any]:
    """What the figures were measured on (a loaded 2-core machine reads very differently from an idle one)."""
    return {"cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "load_avg_1m": os.getloadavg()[0], "processor": platform.processor() or platform.machine(),
            "python": platform.python_version()}


def print_table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    print("  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(header, widths, strict=True))))
    for r in rows:
        print("  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(r, widths, strict=True))))
