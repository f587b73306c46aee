"""The serving model of an LLM replica: continuous batching bounded by KV memory, chunked prefill, admission.

Pure functions of (model, device, tensor-parallel degree, load), on top of the cost model
(DESIGN.md, "The serving model"). A replica of `tp` devices runs steps. A step decodes one token of
every running sequence (the batch B) and, in a *unified* replica, also up to `CHUNK_TOKENS` prompt
tokens of sequences being admitted (chunked prefill); both are costed in the step:

    step(B, c) = decode(B, mean context) + c x tau          tau: prefill seconds per prompt token, its matmul
                                                             compute plus its elementwise activation traffic

Concurrency is bounded by KV memory at the p95 final context (prompt + output):
slots = (usable memory x tp - weights - workspace) / KV bytes of one final-context sequence, at most
MAX_SEQUENCES. At the planned rate the batch is what the load sustains (Little's law), not the cap:
with D decode tokens/s and P prompt tokens/s per replica, B = D x t and c = P x t, so

    t = decode(D t) / (1 - P tau)                           (a fixed point, found by iteration)

A replica is stable when B stays within `max_utilization` of its slots and P tau < max_utilization.
Sequences beyond the slots wait for admission: an M/D/c queue with c = slots servers, each holding a
sequence for its time in the engine; its wait quantiles count in the latency.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from plait.planner.catalog import Catalog
from plait.planner.costmodel import estimate
from plait.planner.factors import Factors
from plait.planner.placement.queueing import wait_quantile
from plait.planner.workload import OpSpec, kv_cache_bytes

MAX_SEQUENCES = 1024
"""Concurrent sequences one replica may run (vLLM's max_num_seqs is of this order): the KV bound's cap."""
BLOCK_TOKENS = 16
"""Tokens per KV-cache block (vLLM's default block size)."""
CHUNK_TOKENS = 2048
"""Prompt tokens a unified replica adds to one step (vLLM's max_num_batched_tokens for chunked prefill)."""
GRID = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


@dataclass(frozen=True)
class Call:
    """One call site's load on an LLM pool: its stages, calls per second and token counts."""

    prefill: str
    decode: str
    rate: float
    prompt: float
    prompt_p95: float
    output: float
    output_p95: float
    cached: int = 0
    batch: float = 1.0     # calls of one request issued at once (a map's elements): its prompts come in batches

    @property
    def computed(self) -> float:
        """Prompt tokens a prefill computes (prefix reuse reads the rest from the KV cache)."""
        return max(self.prompt - self.cached, 1.0)


@dataclass(frozen=True)
class Engine:
    """One replica of an engine for `model` on `tp` devices of type `device`, sized for a set of calls."""

    model: str
    device: str
    tp: int
    slots: int                     # concurrent sequences: KV memory at the p95 final context, capped
    kv_blocks: int                 # KV blocks of BLOCK_TOKENS tokens the free memory holds
    batches: tuple[int, ...]       # GRID batches below slots, then slots
    steps: tuple[float, ...]       # decode step seconds at those batches (mean context)
    token_s: float                 # prefill compute seconds per prompt token (chunked into steps)
    prefill_s: tuple[float, ...]   # per call: one prefill alone at batch 1 (split prefill pools)
    notes: tuple[str, ...]

    def step(self, batch: float) -> float:
        """Decode step seconds at a (fractional) batch: linear between the grid's points."""
        return float(np.interp(batch, self.batches, self.steps))


def engine(model: str, device: str, tp: int, calls: tuple[Call, ...], catalog: Catalog,
           factors: Factors) -> Engine | None:
    """The replica's figures, or None when one sequence at the p95 final context does not fit."""
    final = max(c.prompt_p95 + c.output_p95 for c in calls)
    weight = sum(c.rate * c.output for c in calls) or 1.0
    ctx = sum(c.rate * c.output * (c.prompt + c.output / 2) for c in calls) / weight
    one = estimate(OpSpec(op="decode", model=model, ctx=int(final)), device, 1, "graph", tp,
                   catalog=catalog, factors=factors)
    if not one.fits or one.offloaded_kv:
        return None
    per_seq = kv_cache_bytes(catalog.model(model), int(final) + 1)
    free = one.capacity_bytes * tp - (one.footprint_bytes * tp - per_seq)
    slots = min(MAX_SEQUENCES, int(free // per_seq))
    if slots < 1:
        return None
    spec = OpSpec(op="decode", model=model, ctx=int(ctx))
    batches = (*[g for g in GRID if g < slots], slots)
    steps = tuple(estimate(spec, device, b, "graph", tp, catalog=catalog, factors=factors).seconds for b in batches)
    pre = [estimate(OpSpec(op="prefill", model=model, tokens=max(1, round(c.prompt)),
                           cached_tokens=min(c.cached, max(0, round(c.prompt) - 1))),
                    device, 1, "graph", tp, catalog=catalog, factors=factors) for c in calls]
    token_s = max((p.compute_s + p.elementwise_s) / c.computed for p, c in zip(pre, calls, strict=True))
    blocks = int(free // (per_seq / (final + 1) * BLOCK_TOKENS))
    return Engine(model, device, tp, slots, blocks, batches, steps, token_s, tuple(p.seconds for p in pre),
                  tuple(dict.fromkeys([*one.assumptions, *pre[0].assumptions])))


@dataclass(frozen=True)
class Load:
    """What `replicas` replicas of an engine do at the planned rate: per call, per-execution latencies."""

    replicas: int
    batch: float          # running sequences per replica the load sustains (Little's law)
    step_s: float         # seconds per step at that batch (time per output token)
    chunk: float          # prompt tokens per step (unified)
    utilization: float    # batch / slots
    prefill95: tuple[float, ...]   # per call: admission wait + prefill (chunked, in the step), p95
    prefill50: tuple[float, ...]
    decode95: tuple[float, ...]    # per call: (p95 output tokens - 1) x step, the chunks' and the load's spread
    decode50: tuple[float, ...]    # per call: (output tokens - 1) x the mean step under the load of the moment
    shared95: tuple[float, ...] = ()   # per call: the decode's spread every sequence in the engine then shares (an
                                       # sd, widened for its skew: PoolMember.shared_sd_s)


def serve(e: Engine, calls: tuple[Call, ...], replicas: int, unified: bool, max_utilization: float = 0.85,
          quantile: float = 0.95) -> Load | None:
    """The load on `replicas` replicas (each call spread evenly), or None when a replica is unstable."""
    D = sum(c.rate * c.output for c in calls) / replicas
    P = sum(c.rate * c.computed for c in calls) / replicas if unified else 0.0
    if P * e.token_s >= max_utilization:
        return None
    t = e.step(1.0) / (1.0 - P * e.token_s)
    for _ in range(60):
        if D * t > max_utilization * e.slots:
            return None
        nxt = e.step(D * t) / (1.0 - P * e.token_s)
        if abs(nxt - t) <= 1e-9 * t:
            break
        t = nxt
    if P * t > CHUNK_TOKENS:
        return None
    lam = sum(c.rate for c in calls) / replicas
    hold = sum(c.rate * (c.output * t + _prefill(e, k, c, c.computed, t, unified))
               for k, c in enumerate(calls)) / (lam * replicas)
    w95, w50 = (_admission(q, e.slots, lam, hold) for q in (quantile, 0.5))
    stretch = [c.prompt_p95 / c.prompt for c in calls]
    # chance the replica is stepping when a prompt arrives (some sequence decoding: M/G/inf, mean batch D t);
    # a quantile q counts the busy case when that chance exceeds 1 - q (p95: nearly always, p50: past half)
    busy = 1.0 - math.exp(-D * t) if unified else 0.0
    # a map's prompts arrive together and share the steps' chunks: the last of them (p95) waits for all its
    # siblings' tokens on its replica, the median one for half of them, at the step of the burst (_burst_steps)
    own, spread = _burst_steps(e, calls, replicas, unified, t, D * t)
    sib = [max(c.batch / replicas, 1.0) - 1.0 for c in calls]
    pre95 = [_prefill(e, k, c, c.computed * (s + n), t * o, unified, quantile if busy > 1.0 - quantile else None)
             for k, (c, s, n, o) in enumerate(zip(calls, stretch, sib, own, strict=True))]
    pre50 = [_prefill(e, k, c, c.computed * (1.0 + n / 2.0), t * o, unified, 0.5 if busy > 0.5 else None)
             for k, (c, n, o) in enumerate(zip(calls, sib, own, strict=True))]
    # the prefill makes the first token: decode runs the other output - 1 steps. Prompts admitted while a
    # sequence decodes add their compute to its steps: a Poisson number over its life L, so the p95 adds
    # z sqrt(L sum_c rate_c (computed_c tau)^2) to the mean (t already carries their mean share). A map's
    # prompts come X at once, a compound Poisson load whose variance is E[X^2] / E[X] = X times the Poisson one.
    # The prompts arriving while it decodes lengthen its life, and more arrive meanwhile: its decode is a busy
    # period of the prefill work begun by its own steps, whose variance is w lam E[S^2] / (1 - rho)^3 (Takacs)
    # for w of initial work, rho = P tau: the spread of a life L = w / (1 - rho) is sqrt(L chunks) / (1 - rho)
    # (a map of 4 LLM chains at 30 requests/s, P tau 0.58: simulated TPOT p95 1.6 x its mean, 1.15 x by the
    # Poisson term alone)
    chunks = sum(c.rate * c.batch * (c.computed * e.token_s) ** 2 for c in calls) / replicas if unified else 0.0
    z = NormalDist().inv_cdf(quantile)
    long = [max(c.output_p95 - 1.0, 0.0) * t * k for c, k in zip(calls, own, strict=True)]
    base = [max(c.output - 1.0, 0.0) * t * k for c, k in zip(calls, own, strict=True)]
    # the step's factor 1 / (1 - load) is skewed as well as convex (skewness 6 cv to second order): its q quantile
    # lies z + (z^2 - 1) cv standard deviations out (Cornish-Fisher), kept as a wider sd
    shared = [m * cv * (1.0 + (z * z - 1.0) * cv / z) for m, cv in zip(base, spread, strict=True)]
    alone = [d + z * math.sqrt(d * chunks) / (1.0 - P * e.token_s) - m for d, m in zip(long, base, strict=True)]
    # the step is convex in the load of the moment (a / (1 - rho)): its mean is t (1 + cv^2) to second order
    mid = [m * (1.0 + cv * cv) for m, cv in zip(base, spread, strict=True)]
    return Load(replicas, D * t, t, P * t, D * t / e.slots, tuple(w95 + p for p in pre95), tuple(w50 + p for p in pre50),
                tuple(m + math.hypot(a, z * s) for m, a, s in zip(mid, alone, shared, strict=True)), tuple(mid),
                tuple(shared))


def _burst_steps(e: Engine, calls: tuple[Call, ...], replicas: int, unified: bool, t: float,
                 batch: float) -> tuple[list[float], list[float]]:
    """Per call, (its mean step over the planned step t, the coefficient of variation of its step): the step a
    sequence runs at is set by the engine's load while it decodes, not by the mean load.

    Step t = a / (1 - rho): a the step's fixed cost (weights read, launches), rho = P tau + b D the share of the
    engine's time its tokens take (b the step's slope per running sequence at the planned batch). A sequence
    decodes for W = (output - 1) t, and the load over that window is that of the sequences arriving in it:
    - its own map's siblings always arrive with it (Palm: a batch arrival sees its batch; the mean load does
      not): they add (siblings per replica) x y / W to rho, y a sequence's work (output b + prompt tau);
    - other requests arrive as a compound Poisson stream of bursts (a map's elements at once); one arriving s
      seconds from it shares (W - |s|) / W of its life, so the load it sees varies with variance
      (2/3) sum_j (bursts_j per replica) (batch_j y_j / m_j)^2 / W (m_j = the replicas a burst spreads over);
      the step moves by t / (1 - rho) per unit of load, its cv is sd(load) / (1 - rho - own).
    The second is shared by every sequence decoding then (counted for a map's calls; a single call's spread is the
    busy-period term of serve, whose Poisson prompts are most of it): a map's elements all run at that step, and a request's
    next calls meet the same burst of requests downstream (evaluate.estimate_terms adds it along a path, not in
    quadrature). A map of 4 chains of three 1B calls at 30 requests/s (prompts 0.58 of the second engine's time):
    the simulated elements' sojourns correlate 0.87 within a request, their TPOT p95 is 1.1 to 1.6 x the mean."""
    grow = max(e.step(batch + 1.0) - e.step(batch), e.step(batch) - e.step(max(batch - 1.0, 0.0)), 0.0)
    tau = e.token_s if unified else 0.0
    work = [c.output * grow + c.computed * tau for c in calls]
    rho = sum(c.rate * y for c, y in zip(calls, work, strict=True)) / replicas
    gap = max(1.0 - rho, 1e-3)
    own, spread = [], []
    for c, y in zip(calls, work, strict=True):
        window = max(c.output - 1.0, 1.0) * t
        extra = max(c.batch / replicas, 1.0) - 1.0
        left = max(gap - extra * y / window, gap / 4.0)   # a burst above the engine's capacity: at most 4 x
        var = sum(d.rate / d.batch * min(d.batch, replicas) / replicas * (d.batch * w / min(d.batch, replicas)) ** 2
                  for d, w in zip(calls, work, strict=True)) * 2.0 / (3.0 * window)
        own.append(gap / left)
        # a call outside a map keeps the Takacs term above for its load's spread (the same Poisson prompts)
        spread.append(min(math.sqrt(var) / left, 1.0) if c.batch > 1.0 else 0.0)
    return own, spread


def _admission(q: float, slots: int, lam: float, hold: float) -> float:
    """Wait-for-a-slot quantile; 0 without computing Erlang C when the load sits far below the slots (the
    chance that more than a + 10 sqrt(a) + 20 of a Poisson(a) are busy is below 1e-20)."""
    a = lam * hold
    if slots > a + 10.0 * math.sqrt(a) + 20.0:
        return 0.0
    return wait_quantile(q, slots, lam, 1.0 / hold)


def _prefill(e: Engine, k: int, c: Call, tokens: float, step: float, unified: bool,
             in_flight: float | None = 0.5) -> float:
    """A unified replica that is stepping prefills in chunks, one per step, each step also decoding the batch,
    after the rest of the step in flight (`in_flight` of one: the residual's quantile); an idle one
    (in_flight None) runs the prefill alone (calls[k]'s own prefill time, its extra tokens' compute added).
    0 for a decode-only replica (the prompt arrives as a KV cache)."""
    if not unified:
        return 0.0
    if in_flight is None:
        return e.prefill_s[k] + max(tokens - c.computed, 0.0) * e.token_s
    return (in_flight + math.ceil(tokens / CHUNK_TOKENS)) * step + tokens * e.token_s


def fewest_replicas(e: Engine, calls: tuple[Call, ...], unified: bool, max_utilization: float = 0.85) -> int:
    """A lower bound on stable replicas: decode tokens at the full-slot step rate, and prefill compute."""
    D = sum(c.rate * c.output for c in calls)
    P = sum(c.rate * c.computed for c in calls) if unified else 0.0
    full = max_utilization * e.slots / e.step(max_utilization * e.slots)
    return max(1, math.ceil(D / full), math.ceil(P * e.token_s / max_utilization))
