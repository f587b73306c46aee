"""Reading a plan for simulation: plan.json from a `plait plan --out` folder, its pools, and the checks that
it was made from this agent. `pools_from_stages` derives pools from the stage choices of plans made before
the planner filled `pools` (the only place the simulator reads `stages`)."""

from __future__ import annotations

import math
import re
from pathlib import Path

from pydantic import ValidationError

from plait.planner.catalog import Catalog, did_you_mean
from plait.planner.costmodel import estimate
from plait.planner.plan import PLAN_FORMAT, CallSite, Plan, Pool, StageChoice, graph_hash
from plait.planner.simulate.errors import SimulateError
from plait.planner.simulate.sites import Sites, node_stages, stale_figures
from plait.planner.workload import OpSpec, kv_cache_bytes
from plait.sdk.graph import AgentGraph

BLOCK_TOKENS = 16
_KIND = {"prefill": "llm", "decode": "llm", "encode": "encoder", "vocode": "encoder", "search": "search",
         "tool": "tool"}


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
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise SimulateError(f"{path} is not a plan this plait reads: {where}: {first['msg']}.\n"
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


def pools_of(plan: Plan, catalog: Catalog) -> tuple[list[Pool], list[str]]:
    """The plan's pools; for a plan without them, pools derived from its stages (and a note saying so)."""
    if plan.pools:
        return list(plan.pools), []
    return pools_from_stages(plan.stages, catalog), [
        "plan.json has no pools yet: one pool per stage, derived from its stage choices (pools_from_stages)"]


def _pool_id(stage: str) -> str:
    return re.sub(r"[^a-z0-9.]+", "-", stage.lower()).strip("-")


def _loc(stage: str) -> str:
    return stage.partition("@")[2].partition("#")[0]


def kv_geometry(model: str, device: str, tp: int, fraction: float, catalog: Catalog,
                block_tokens: int = BLOCK_TOKENS) -> int:
    """KV blocks of `block_tokens` one replica holds: usable memory less weights and workspace, over a block."""
    c = estimate(OpSpec(op="decode", model=model, ctx=0), device, 1, "graph", tp, catalog=catalog)
    spec = catalog.model(model)
    per_block = (kv_cache_bytes(spec, 2 * block_tokens) - kv_cache_bytes(spec, block_tokens)) / tp
    free = c.capacity_bytes * fraction - c.footprint_bytes
    return max(1, math.floor(free / per_block)) if per_block > 0 else 1


def pools_from_stages(stages: list[StageChoice], catalog: Catalog) -> list[Pool]:
    """One pool per stage: split prefill/decode pairs for LLM calls, the stage's device, replicas and batch.

    A decode stage's batch becomes the replica's `max_sequences`; its KV blocks are what the cost model leaves
    of usable memory after the weights. Tool workers get the stage's cores (rounded up) on its CPU server.
    """
    names = {s.stage for s in stages}
    pools: list[Pool] = []
    for s in stages:
        kind = s.stage.partition(":")[0]
        if kind not in _KIND:
            raise SimulateError(f"stage {s.stage!r} has an unknown kind {kind!r}.\nTo fix: plan again with this plait.")
        pool_kind = _KIND[kind]
        role = peer = None
        max_sequences = kv_blocks = block_tokens = None
        if pool_kind == "llm":
            role = kind
            other = ("decode" if kind == "prefill" else "prefill") + s.stage[len(kind):]
            peer = _pool_id(other) if other in names else None
            if kind == "decode":
                assert s.model is not None
                max_sequences, block_tokens = s.batch, BLOCK_TOKENS
                kv_blocks = kv_geometry(s.model, s.device, s.devices_per_replica, s.share, catalog)
        dev = catalog.device(s.device)
        cores = math.ceil(s.share * dev.cores.value - 1e-9) if pool_kind == "tool" and dev.cores else 0
        pools.append(Pool(id=_pool_id(s.stage), kind=pool_kind, model=s.model, role=role, peer=peer,  # type: ignore[arg-type]
                          mig_profile=None, prefill_chunk_tokens=None,
                          device=s.device, devices_per_replica=s.devices_per_replica,
                          tensor_parallel=s.devices_per_replica,
                          slice="mps" if s.share < 1 and dev.kind != "cpu" else "none",
                          slice_fraction=s.share if dev.kind != "cpu" else 1.0, replicas=s.replicas,
                          batch=s.batch, cpu_cores=max(cores, 1) if pool_kind == "tool" else 0,
                          max_sequences=max_sequences, kv_blocks=kv_blocks, block_tokens=block_tokens,
                          call_sites=[CallSite(stage=s.stage, loc=_loc(s.stage), visits=s.visits)]))
    return pools


def pool_for(stage: str, pools: dict[str, Pool], where: str) -> Pool:
    """The pool serving call site `stage`; SimulateError (with the closest names) when no pool serves it."""
    pool = pools.get(stage)
    if pool is None:
        raise SimulateError(f"no pool of the plan serves {stage!r} ({where}).\n"
                            "To fix: the plan is stale or was made from another agent; plan again."
                            + did_you_mean(stage, sorted(pools)))
    return pool
