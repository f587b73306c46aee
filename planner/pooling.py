"""LLM pool options for the solver: unified or split replicas, alone or shared by call sites of one model.

For every model, the call sites that use it (a prefill stage and its decode stage each) are served
either by their own pools or, when there are several, by shared ones (one copy of the weights per
replica, the load summed). For each set of call sites, each device type and each tensor-parallel
degree that fits in a node, and a few replica counts from the fewest stable ones up:

- a *unified* pool runs prefill and decode of the set's calls (continuous batching, chunked prefill);
- a *decode* pool runs their decode (continuous batching), the KV cache arriving from a prefill pool;
- a shared *prefill* pool (sets of two or more) runs their prefills, batch 1, M/D/c.

A single call's split prefill keeps the stage's own candidates (batched prefill, planning.py). The
numbers come from planner.serving; the solver sees PoolOptions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from plait.planner.catalog import Catalog, CatalogError
from plait.planner.costmodel import PriceBasis, price_per_hour
from plait.planner.factors import builtin_factors
from plait.planner.grouping import StageGraph, StageWork, spread_cs2
from plait.planner.placement import PoolMember, PoolOption
from plait.planner.placement.queueing import min_replicas, wait_quantile
from plait.planner.serving import CHUNK_TOKENS, Call, Engine, Load, engine, fewest_replicas, serve
from plait.sdk.models import kind_of

if TYPE_CHECKING:
    from plait.planner.endpoint import RemoteEndpoint

EXTRA_REPLICAS = 1
"""Replica counts tried above the fewest that are stable and meet the caps (more cut the step time)."""
DEGREES = (1, 2, 4, 8)
MAX_SEARCH = 256


@dataclass(frozen=True)
class PoolInfo:
    """What plan.json's Pool needs beyond the solver's numbers."""

    role: str
    model: str
    slots: int
    kv_blocks: int
    chunk: int | None
    batch: float
    notes: tuple[str, ...]
    kind: str = "llm"     # llm, encoder or search (encoders and indexes shared by call sites: sharing.py)
    endpoint: RemoteEndpoint | None = None   # a remote pool (remote.py): the endpoint that serves it


@dataclass(frozen=True)
class Caps:
    """Per-call bounds a pool must meet (seconds), from the agent's SLA."""

    ttft_s: float | None = None
    tpot_s: float | None = None


def is_llm(stage: StageWork) -> bool:
    return stage.kind in ("prefill", "decode") and kind_of(stage.spec.model or "") == "llm"


def llm_calls(stages: StageGraph, qps: float) -> dict[str, list[Call]]:
    """Model -> its call sites (a decode stage and the prefill that made its KV cache), with their load."""
    by_name = {s.name: s for s in stages.stages}
    out: dict[str, list[Call]] = {}
    for d in stages.stages:
        if d.kind != "decode" or not is_llm(d) or d.pair is None:
            continue
        p = by_name[d.pair]
        prompt = float(p.spec.tokens or 1)
        out.setdefault(d.spec.model or "", []).append(Call(
            prefill=p.name, decode=d.name, rate=qps * d.visits, prompt=prompt, prompt_p95=prompt * p.work_p95,
            output=d.steps, output_p95=d.steps * d.work_p95, cached=p.spec.cached_tokens,
            batch=max(p.concurrency, 1.0)))
    return out


def pool_options(stages: StageGraph, qps: float, caps: Caps, devices: list[str], basis: PriceBasis,
                 catalog: Catalog, max_degree: dict[str, int],
                 max_utilization: float = 0.85) -> list[tuple[PoolOption, PoolInfo]]:
    """Every LLM pool option of the agent (see the module docstring)."""
    out: list[tuple[PoolOption, PoolInfo]] = []
    for model, calls in sorted(llm_calls(stages, qps).items()):
        sets = [(c,) for c in calls] + ([tuple(calls)] if len(calls) > 1 else [])
        for group in sets:
            for device in devices:
                for tp in DEGREES:
                    if tp > max_degree.get(device, 8) or (tp > 1 and catalog.device(device).kind == "cpu"):
                        continue
                    try:
                        e = engine(model, device, tp, group, catalog, builtin_factors())
                    except CatalogError:
                        continue   # a degree the model's heads do not divide into
                    if e is None:
                        continue
                    price = tp * price_per_hour(catalog.device(device), basis)
                    for unified in (True, False):
                        out += _engine_options(e, group, unified, caps, price, max_utilization)
                    if len(group) > 1:
                        out += _shared_prefill(e, group, caps, price, max_utilization)
    return out


def _meets(e: Engine, group: tuple[Call, ...], load: Load, unified: bool, caps: Caps) -> bool:
    if caps.tpot_s is not None and load.step_s > caps.tpot_s * (1 + 1e-12):
        return False
    if unified and caps.ttft_s is not None:
        return all(p <= caps.ttft_s for p in load.prefill50)
    return True


def _engine_options(e: Engine, group: tuple[Call, ...], unified: bool, caps: Caps, price: float,
                    util: float) -> list[tuple[PoolOption, PoolInfo]]:
    """Unified or decode pools of `e` for the calls in `group`: the fewest replicas that are stable and meet
    the caps, and EXTRA_REPLICAS more."""
    if caps.tpot_s is not None and e.step(1.0) > caps.tpot_s:
        return []
    r = fewest_replicas(e, group, unified, util)
    found: list[Load] = []
    for n in range(r, r + MAX_SEARCH):
        load = serve(e, group, n, unified, util)
        if load is not None and _meets(e, group, load, unified, caps):
            found = [x for k in range(n, n + EXTRA_REPLICAS + 1) if (x := serve(e, group, k, unified, util))]
            break
    role = "unified" if unified else "decode"
    out = []
    for load in found:
        members = [PoolMember(stage=c.decode, p95_s=load.decode95[k], p50_s=load.decode50[k],
                              service_s=c.output * load.step_s, utilization=load.utilization,
                              shared_sd_s=load.shared95[k])
                   for k, c in enumerate(group)]
        if unified:
            members = [PoolMember(stage=c.prefill, p95_s=load.prefill95[k], p50_s=load.prefill50[k],
                                  service_s=load.prefill50[k], utilization=load.utilization)
                       for k, c in enumerate(group)] + members
        label = (f"{role} {e.model} on {e.device} tp{e.tp} x{load.replicas}: batch {load.batch:.0f} of "
                 f"{e.slots}, {load.step_s * 1e3:.1f} ms/step")
        out.append((PoolOption(label=label, role=role, device=e.device, tp=e.tp, replicas=load.replicas,
                               batch=e.slots, price_per_hour=price * load.replicas, members=members),
                    PoolInfo(role, e.model, e.slots, e.kv_blocks, CHUNK_TOKENS if unified else None, load.batch,
                             e.notes)))
    return out


def _shared_prefill(e: Engine, group: tuple[Call, ...], caps: Caps, price: float,
                    util: float) -> list[tuple[PoolOption, PoolInfo]]:
    """One prefill pool for several calls: batch-1 prefills, M/D/c on the summed rate and mean service."""
    if caps.ttft_s is not None and max(e.prefill_s) > caps.ttft_s:
        return []
    lam = sum(c.rate for c in group)
    service = sum(c.rate * s for c, s in zip(group, e.prefill_s, strict=True)) / lam
    r0 = int(min_replicas(np.array([lam]), np.array([1.0 / service]), util)[0])
    cs2 = max(spread_cs2(c.prompt_p95 / c.prompt) for c in group)   # prompt spread spreads the prefill time
    out = []
    for r in range(r0, r0 + EXTRA_REPLICAS + 1):
        w95, w50 = (wait_quantile(q, r, lam, 1.0 / service, cs2) for q in (0.95, 0.5))
        members = [PoolMember(stage=c.prefill, p95_s=w95 + s * c.prompt_p95 / c.prompt, p50_s=w50 + s, service_s=s,
                              utilization=lam * service / r) for c, s in zip(group, e.prefill_s, strict=True)]
        label = f"prefill {e.model} on {e.device} tp{e.tp} x{r}: shared by {len(group)} calls"
        out.append((PoolOption(label=label, role="prefill", device=e.device, tp=e.tp, replicas=r,
                               price_per_hour=price * r, members=members),
                    PoolInfo("prefill", e.model, 1, e.kv_blocks, None, 1.0, e.notes)))
    return out
