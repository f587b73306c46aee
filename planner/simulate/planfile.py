"""Reading a plan for simulation: plan.json from a `plait plan --out` folder, its pools, and the checks that
it was made from this agent (the stages' planning figures are read only to tell a stale plan)."""

from __future__ import annotations

import math
from pathlib import Path

from pydantic import ValidationError

from plait.planner.catalog import Catalog, did_you_mean
from plait.planner.costmodel import estimate
from plait.planner.plan import PLAN_FORMAT, Plan, Pool, graph_hash
from plait.planner.simulate.errors import SimulateError
from plait.planner.simulate.sites import Sites, node_stages, stale_figures
from plait.planner.validation import first_problem
from plait.planner.workload import OpSpec, kv_cache_bytes
from plait.sdk.graph import AgentGraph

BLOCK_TOKENS = 16


def load_plan(folder: Path) -> Plan:
    """The Plan in `folder`/plan.json (a `plait plan --out` folder); SimulateError says what is wrong."""
    path = folder / "plan.json" if folder.is_dir() or not folder.name.endswith(".json") else folder
    if not path.is_file():
        raise SimulateError(f"no plan.json in {folder}.\n"
                            f"To fix: make one with `plait plan FILE:AGENT --out {folder}`, or leave out --plan "
                            "to plan first.")
    text = path.read_text()
    if '"format"' not in text:  # plans before the pool contract: the model's default would pass them
        raise SimulateError(f"{path} was made by an older plait (it has no format version).\n"
                            "To fix: plan again with this plait (`plait plan FILE:AGENT --out DIR`).")
    try:
        plan = Plan.model_validate_json(text)
    except ValidationError as err:
        raise SimulateError(f"{path} is not a plan this plait reads: {first_problem(err)}.\n"
                            "To fix: plan again with this plait (`plait plan FILE:AGENT --out DIR`).") from None
    if plan.format != PLAN_FORMAT:
        raise SimulateError(f"{path} has format {plan.format!r}; this plait reads {PLAN_FORMAT!r}.\n"
                            "To fix: plan again with this plait.")
    return plan


def check_plan(plan: Plan, graph: AgentGraph, catalog: Catalog) -> Sites:
    """Refuse a plan made from another agent, or from an older version of this one; return its call sites.

    Without a graph hash in plan.json (older plans), a stage whose planning figure (prompt tokens, output
    tokens, tool latency, k) differs from what the agent declares now marks the plan as stale.
    """
    fix = f"To fix: plan again: `plait plan {plan.source} --out DIR`, then simulate with --plan DIR."
    if plan.agent != graph.name:
        raise SimulateError(f"the plan is for agent {plan.agent!r} ({plan.source}), not {graph.name!r}.\n{fix}")
    if plan.graph_hash and plan.graph_hash != graph_hash(graph):
        raise SimulateError(f"the plan was made from another version of {graph.name!r} (graph hash "
                            f"{plan.graph_hash[:12]} in plan.json, {graph_hash(graph)[:12]} now).\n{fix}")
    sites = node_stages(graph, catalog)
    if changed := stale_figures({s.stage: s.figures for s in plan.stages}, sites):
        raise SimulateError(f"the plan is stale: the agent changed since it was planned ({'; '.join(changed[:3])}).\n"
                            f"{fix}")
    return sites


def pools_of(plan: Plan) -> list[Pool]:
    """The plan's pools (the planner fills them: unified or split LLM pools, pools shared by call sites, tools,
    encoders and searches on host CPUs); SimulateError for a plan without any."""
    if not plan.pools:
        raise SimulateError(f"the plan of {plan.source} lists no pools.\n"
                            f"To fix: plan again with this plait: `plait plan {plan.source} --out DIR`.")
    return list(plan.pools)


def kv_geometry(model: str, device: str, tp: int, fraction: float, catalog: Catalog,
                block_tokens: int = BLOCK_TOKENS) -> int:
    """KV blocks of `block_tokens` one replica holds: usable memory less weights and workspace, over a block."""
    c = estimate(OpSpec(op="decode", model=model, ctx=0), device, 1, "graph", tp, catalog=catalog)
    spec = catalog.model(model)
    per_block = (kv_cache_bytes(spec, 2 * block_tokens) - kv_cache_bytes(spec, block_tokens)) / tp
    free = c.capacity_bytes * fraction - c.footprint_bytes
    return max(1, math.floor(free / per_block)) if per_block > 0 else 1


def pool_for(stage: str, pools: dict[str, Pool], where: str) -> Pool:
    """The pool serving call site `stage`; SimulateError (with the closest names) when no pool serves it."""
    pool = pools.get(stage)
    if pool is None:
        raise SimulateError(f"no pool of the plan serves {stage!r} ({where}).\n"
                            "To fix: the plan is stale or was made from another agent; plan again."
                            + did_you_mean(stage, sorted(pools)))
    return pool
