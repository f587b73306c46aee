"""Build the simulation from pools, graph and cost model; run it; reduce what it recorded to a SimResult."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from functools import partial

import simpy

from plait.planner.catalog import Catalog, load_catalog
from plait.planner.links import link_between
from plait.planner.plan import Pool
from plait.planner.simulate.arrivals import poisson
from plait.planner.simulate.errors import SimulateError
from plait.planner.simulate.link import Link
from plait.planner.simulate.llm import Engine, Seq
from plait.planner.simulate.metrics import PoolMeter, percentiles
from plait.planner.simulate.planfile import BLOCK_TOKENS, kv_geometry, pool_for
from plait.planner.simulate.queues import BatchServers, Job
from plait.planner.simulate.service import Coster
from plait.planner.simulate.sites import Sites, node_stages
from plait.planner.simulate.spec import CallStats, SimOptions, SimResult
from plait.planner.simulate.walker import Request, Runtime, Walker
from plait.planner.workload import OpSpec
from plait.sdk.graph import AgentGraph

Progress = Callable[[int, int], None]
HOST = "/host"
"""How a pool on the host CPUs of TYPE's servers names its place: TYPE/host, as plan.json's transfers do."""


def _service(pool: Pool, coster: Coster) -> Callable[[Sequence[Job]], float]:
    """Seconds for a batch of jobs on one replica of a batched pool, from the cost model."""
    if pool.kind == "tool":
        overhead = coster.seconds(pool, OpSpec(op="py_call", cpu_seconds=0.0), 1)
        return lambda jobs: jobs[0].size + overhead
    if pool.kind == "llm":   # the prefill side of a split pair: the batch padded to its longest prompt
        def prefill(jobs: Sequence[Job]) -> float:
            seq: Seq = jobs[0].payload
            return coster.prefill(pool, seq.prefill_spec, max(j.payload.prompt for j in jobs), len(jobs))
        return prefill

    def batched(jobs: Sequence[Job]) -> float:   # encoders and searches: padded to the longest input
        spec: OpSpec = jobs[0].payload
        if spec.tokens is not None:
            spec = spec.model_copy(update={"tokens": -(-max(j.payload.tokens for j in jobs) // 16) * 16})
        if spec.audio_seconds is not None:      # a vocoder: clips padded to the longest, to 0.1 s
            spec = spec.model_copy(update={"audio_seconds": math.ceil(max(j.payload.audio_seconds for j in jobs)
                                                                      * 10) / 10})
        return coster.seconds(pool, spec, len(jobs))
    return batched


def _servers(env: simpy.Environment, pool: Pool, coster: Coster, meter: PoolMeter, policy: str,
             catalog: Catalog, cores_per_call: float) -> BatchServers | Engine:
    if pool.kind == "llm" and pool.role in ("unified", "decode"):
        if pool.model is None:
            raise SimulateError(f"LLM pool {pool.id!r} names no model.\nTo fix: set the pool's model in plan.json.")
        if pool.endpoint is not None:   # a remote pool: its slots bound it, its KV cache is its own business
            return Engine(env, pool, coster, meter, policy, 1 << 40, BLOCK_TOKENS)
        blocks = pool.kv_blocks or kv_geometry(pool.model, pool.device, pool.tensor_parallel, pool.slice_fraction,
                                               catalog, pool.block_tokens or BLOCK_TOKENS)
        return Engine(env, pool, coster, meter, policy, blocks, pool.block_tokens or BLOCK_TOKENS)
    workers = pool.replicas
    if pool.kind == "tool":   # each worker holds the cores one call keeps busy
        workers = pool.replicas * max(1, int(pool.cpu_cores // max(cores_per_call, 1.0)))
    return BatchServers(env, workers, 1 if pool.kind == "tool" else pool.batch, _service(pool, coster), meter, policy)


def simulate(graph: AgentGraph, pools: list[Pool], options: SimOptions, *, catalog: Catalog | None = None,
             progress: Progress | None = None, sites: Sites | None = None) -> SimResult:
    """Replay `options.requests` requests of `graph` on `pools`; see docs/simulate.md for the semantics.

    `sites` (from `node_stages`, e.g. as `check_plan` returns them) saves lowering the graph again.
    """
    started = time.perf_counter()
    cat = catalog or load_catalog()
    env = simpy.Environment()
    rng = random.Random(options.seed)
    coster = Coster(cat)
    stages = sites if sites is not None else node_stages(graph, cat)
    by_stage: dict[str, Pool] = {}
    for p in pools:
        for site in p.call_sites:
            by_stage[site.stage] = p
    ids = {p.id for p in pools}
    for p in pools:
        if p.peer is not None and p.peer not in ids:
            raise SimulateError(f"pool {p.id!r} names peer {p.peer!r}, which is not a pool of the plan.\n"
                                "To fix: plan again.")
    used = {w.name: pool_for(w.name, by_stage, w.loc) for per in stages.values() for w in per.values()}
    meters = {p.id: PoolMeter(p.id, p.kind, p.device + HOST if p.host_cpu else p.device, p.replicas) for p in pools}
    cores = {p.id: max((w.tool_cpu for per in stages.values() for w in per.values() if used[w.name] is p),
                       default=1.0) for p in pools}
    servers = {p.id: _servers(env, p, coster, meters[p.id], options.policy, cat, cores[p.id]) for p in pools}
    links: dict[tuple[str, str], Link] = {}
    place = {p.id: p.device + HOST if p.host_cpu else p.device for p in pools}

    def link(a: str, b: str) -> Link:
        """The link from pool a to pool b, over their device types' link as the planner costs it
        (planner/links.py); every transfer between the same two types shares it."""
        lo, hi = sorted((place[a], place[b]))
        key = (lo, hi)
        if key not in links:
            bw, lat = link_between(key[0], key[1], cat)
            links[key] = Link(env, f"{key[0]}<->{key[1]}", bw * 1e9, lat)
        return links[key]

    walker = Walker(Runtime(env, rng, stages, used, servers, link, cat))
    arrivals = options.arrivals or poisson(options.requests, options.qps, random.Random(options.seed + 1))
    slack = options.sla_p95_s if options.sla_p95_s is not None else 1e9
    requests: list[Request] = []
    step = max(1, len(arrivals) // 100)
    ended = [0]

    def finished(req: Request, _e: simpy.Event) -> None:
        req.end = env.now
        ended[0] += 1
        if progress is not None and ended[0] % step == 0:
            progress(ended[0], len(arrivals))

    def source() -> simpy.events.ProcessGenerator:
        for i, t in enumerate(arrivals):
            if t > env.now:
                yield env.timeout(t - env.now)
            req = Request(i, env.now, env.now + slack)
            requests.append(req)
            start = env.event()
            start.succeed((None, 256.0))
            outs = walker.walk(graph, [start] * len(graph.params), req)
            env.all_of(outs).callbacks.append(partial(finished, req))

    env.process(source())
    env.run()
    if progress is not None:
        progress(len(arrivals), len(arrivals))
    # the last request's end, not env.now: a cut-short decode run leaves its timer behind (harmless)
    horizon = max((r.end for r in requests), default=env.now)
    return _result(requests, meters, options, graph, time.perf_counter() - started, horizon)


def _result(requests: list[Request], meters: dict[str, PoolMeter], options: SimOptions, graph: AgentGraph,
            wall: float, horizon: float) -> SimResult:
    unfinished = [r.rid for r in requests if r.end < 0]
    if unfinished:
        raise SimulateError(f"{len(unfinished)} requests never finished (first: #{unfinished[0]}): a pool cannot "
                            "serve one of its calls.\nTo fix: check the pools' KV blocks and replicas.")
    measured = requests[int(len(requests) * options.warmup):]
    e2e = [r.end - r.arrival for r in measured]
    calls: dict[str, tuple[list[float], list[float], list[float]]] = {}
    text: dict[str, bool] = {}
    for r in measured:
        for site, since in _first_tokens(r).items():
            calls.setdefault(site, ([], [], []))[2].append(since)
        for site, ttft, tpot, _since, llm in r.calls:
            t, p, _a = calls[site]
            text[site] = llm
            t.append(ttft)
            if tpot is not None:
                p.append(tpot)
    targets = (options.sla_p95_s, options.ttft_s, options.tpot_s)
    within = goodput = None
    span = max(r.end for r in measured) - min(r.arrival for r in measured)
    if any(x is not None for x in targets):
        ok = sum(_meets(r, options) for r in measured)
        within = ok / len(measured)
        goodput = ok / span if span > 0 else 0.0
    offered = (len(measured) - 1) / (measured[-1].arrival - measured[0].arrival) if len(measured) > 1 else 0.0
    return SimResult(requests=len(measured), simulated_s=horizon, wall_s=wall, policy=options.policy,
                     offered_qps=offered, e2e=percentiles(e2e),
                     calls=[CallStats(site=s, loc=s.partition("@")[2], llm=text[s], ttft=percentiles(t),
                                      tpot=percentiles(p), first_token=percentiles(a)) for s, (t, p, a) in calls.items()],
                     pools=[m.stats(horizon) for m in meters.values()], within_sla=within, goodput_qps=goodput)


def _first_tokens(r: Request) -> dict[str, float]:
    """Per call site of a request: its first token's time since the request's arrival (first execution)."""
    out: dict[str, float] = {}
    for site, _ttft, _tpot, since, _llm in r.calls:
        out[site] = min(out.get(site, since), since)
    return out


def _meets(r: Request, o: SimOptions) -> bool:
    if o.sla_p95_s is not None and r.end - r.arrival > o.sla_p95_s:
        return False
    text = {site for site, *_rest, llm in r.calls if llm}
    if o.ttft_s is not None and any(t > o.ttft_s for site, t in _first_tokens(r).items() if site in text):
        return False
    return not (o.tpot_s is not None and any(p is not None and p > o.tpot_s for _, _, p, _, _ in r.calls))
