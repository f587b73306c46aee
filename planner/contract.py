"""plan.json's `pools` list from a placement: the contract the simulator, the runtime and the CRD read.

A stage the solver gave a pool option shares that pool with the option's other stages (a unified
replica's prefill and decode; call sites of one model); every other stage gets a pool of its own.
Split LLM pools name their other side (`peer`). Ids are `{kind}-{model or name}-{n}`, numbered in
stage order, so the same plan always gets the same ids.
"""

from __future__ import annotations

import math
import re
from typing import Literal

from plait.planner.catalog import Catalog
from plait.planner.grouping import StageGraph, StageWork
from plait.planner.placement import Choice, Placement, PoolOption
from plait.planner.plan import CallSite, Pool
from plait.planner.pooling import PoolInfo
from plait.planner.runtime import server, slice_of
from plait.planner.serving import BLOCK_TOKENS

KINDS = {"prefill": "llm", "decode": "llm", "encode": "encoder", "vocode": "encoder", "search": "search",
         "tool": "tool"}


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9.]+", "-", text.lower()).strip("-") or "pool"


def _site(st: StageWork) -> CallSite:
    return CallSite(stage=st.name, loc=st.loc, visits=st.visits)


def plan_pools(placement: Placement, options: list[PoolOption], infos: list[PoolInfo], stages: StageGraph,
               catalog: Catalog) -> tuple[list[Pool], dict[str, str]]:
    """The pools of a placement, and stage name -> pool id (for placed.mlir's `pool` attributes)."""
    by_name = {s.name: s for s in stages.stages}
    counts: dict[str, int] = {}
    pools: list[Pool] = []
    of_stage: dict[str, str] = {}
    of_option: dict[int, str] = {}

    def new_id(kind: str, what: str) -> str:
        base = f"{kind}-{_slug(what)}"
        counts[base] = counts.get(base, -1) + 1
        return f"{base}-{counts[base]}"

    for ch in placement.choices:
        st = by_name[ch.stage]
        if ch.pool_option is not None:
            if ch.pool_option not in of_option:
                b = ch.pool_option
                endpoint = infos[b].endpoint
                of_option[b] = new_id("remote", endpoint.name) if endpoint else new_id(infos[b].kind, infos[b].model)
                pools.append(_option_pool(of_option[b], options[b], infos[b], by_name))
            of_stage[ch.stage] = of_option[ch.pool_option]
            continue
        kind = KINDS[st.kind]
        pool_id = new_id(kind, st.name.split(":", 1)[-1].split("@")[0])
        of_stage[ch.stage] = pool_id
        pools.append(_own_pool(pool_id, kind, ch, st, catalog))
    return _pair(pools, of_stage, stages), of_stage


def _option_pool(pool_id: str, option: PoolOption, info: PoolInfo, by_name: dict[str, StageWork]) -> Pool:
    """The pool of a pool option the solver took: an LLM pool (unified, split side, shared), or an encoder
    or index shared by call sites."""
    sites = [_site(by_name[m.stage]) for m in option.members]
    dev = option.device
    if info.kind != "llm":
        return Pool(id=pool_id, kind=info.kind, model=info.model, device=dev,  # type: ignore[arg-type]
                    runtime=server(dev).runtime, devices_per_replica=option.tp, tensor_parallel=option.tp,
                    replicas=option.replicas, batch=option.batch, call_sites=sites)
    if info.endpoint is not None:   # a remote endpoint: its own slots, KV cache and engine
        return Pool(id=pool_id, kind="llm", model=info.model, role="unified", device=dev, runtime="remote",
                    replicas=1, max_sequences=info.slots, expected_sequences=info.batch, endpoint=info.endpoint,
                    call_sites=sites)
    kv = info.role != "prefill"
    return Pool(id=pool_id, kind="llm", model=info.model, role=info.role, device=dev,  # type: ignore[arg-type]
                runtime=server(dev).runtime, devices_per_replica=option.tp, tensor_parallel=option.tp,
                replicas=option.replicas, batch=1, max_sequences=info.slots,
                expected_sequences=info.batch if kv else None, kv_blocks=info.kv_blocks if kv else None,
                block_tokens=BLOCK_TOKENS if kv else None, prefill_chunk_tokens=info.chunk, call_sites=sites)


def _own_pool(pool_id: str, kind: str, ch: Choice, st: StageWork, catalog: Catalog) -> Pool:
    """A pool serving one stage alone: a split prefill, an encoder, a search, a tool's workers."""
    on_host = ch.device.endswith("/host")
    dev = catalog.device(ch.device.removesuffix("/host"))
    slice_kind, fraction, profile = slice_of(dev, 1.0 if on_host or dev.kind == "cpu" else ch.share)
    cores = math.ceil(st.tool_cpu - 1e-9) if kind == "tool" else 0
    if on_host and kind != "tool":   # an encoder or search on host cores: its share of one device's host cores
        cores = max(1, round(ch.share * server(dev.name).host_cores))
    role: Literal["prefill", "decode"] | None = None
    if st.kind in ("prefill", "decode"):   # a split side (speech decoders too: their own engine, batched)
        role = "prefill" if st.kind == "prefill" else "decode"
    return Pool(id=pool_id, kind=kind, model=st.spec.model if kind != "tool" else None,  # type: ignore[arg-type]
                role=role, device=dev.name, host_cpu=on_host, runtime="cpu" if on_host else server(dev.name).runtime, devices_per_replica=ch.devices_per_replica,
                tensor_parallel=ch.devices_per_replica, slice=slice_kind, slice_fraction=fraction,
                mig_profile=profile, replicas=ch.replicas, batch=ch.batch, cpu_cores=cores,
                call_sites=[_site(st)])


def _pair(pools: list[Pool], of_stage: dict[str, str], stages: StageGraph) -> list[Pool]:
    """Split pools name their other side: a prefill pool the decode pool its KV cache goes to, and back."""
    peer: dict[str, str] = {}
    for st in stages.stages:
        if st.kind == "decode" and st.pair is not None and of_stage[st.name] != of_stage[st.pair]:
            peer.setdefault(of_stage[st.pair], of_stage[st.name])
            peer.setdefault(of_stage[st.name], of_stage[st.pair])
    return [p.model_copy(update={"peer": peer.get(p.id)}) if p.role in ("prefill", "decode") else p for p in pools]
