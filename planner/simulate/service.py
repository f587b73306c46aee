"""Service times from the cost model (plait.planner.costmodel) for the batch actually running, memoized.

Token counts are rounded up to a bucket before costing (prefill prompts and encoder inputs to 16 tokens,
decode contexts to 32), so a run asks the cost model about a few hundred shapes, not one per step. A replica
on a slice of an accelerator (`slice_fraction` < 1) runs that many times slower, as the planner prices it. An
encoder or search on the host CPUs of a GPU server (`host_cpu`) is costed as the planner costs it: on
HOST_CPU's cores (eager, batch 1 per item), slowed by the `cpu_cores` the pool holds.
"""

from __future__ import annotations

import math

from plait.planner.catalog import Catalog
from plait.planner.costmodel import estimate
from plait.planner.factors import Factors, builtin_factors
from plait.planner.plan import Pool
from plait.planner.runtime import HOST_CPU
from plait.planner.workload import HOST_OPS, OpSpec

PROMPT_BUCKET = 16
CTX_BUCKET = 32


def _up(n: float, bucket: int) -> int:
    return max(bucket, int(math.ceil(n / bucket)) * bucket)


class Coster:
    """Seconds per execution on a pool's replica, from `plait.planner.costmodel.estimate`."""

    def __init__(self, catalog: Catalog, factors: Factors | None = None):
        self.catalog, self.factors = catalog, factors or builtin_factors()
        self._memo: dict[tuple[object, ...], float] = {}

    def seconds(self, pool: Pool, spec: OpSpec, batch: int) -> float:
        """One execution of `spec` over `batch` items on one replica of `pool`."""
        host = pool.host_cpu and spec.op not in HOST_OPS
        key = (pool.device, pool.tensor_parallel, pool.slice_fraction, host and pool.cpu_cores, spec, batch)
        s = self._memo.get(key)
        if s is None and host:   # the host CPUs of `pool.device`'s servers: HOST_CPU's cores, scaled
            ref = self.catalog.device(HOST_CPU)
            assert ref.cores is not None
            one = estimate(spec, HOST_CPU, 1, "eager", 1, catalog=self.catalog, factors=self.factors).seconds
            s = self._memo[key] = batch * one * ref.cores.value / max(pool.cpu_cores, 1)
        if s is None:
            tp = 1 if spec.op == "py_call" else pool.tensor_parallel
            s = estimate(spec, pool.device, batch, "graph", tp, catalog=self.catalog, factors=self.factors).seconds
            if self.catalog.device(pool.device).kind != "cpu":
                s /= pool.slice_fraction
            self._memo[key] = s
        return s

    def prefill(self, pool: Pool, spec: OpSpec, tokens: int, batch: int = 1, cached: int = 0) -> float:
        """A prefill of `tokens` prompt tokens (the first `cached` already in the KV cache) for `batch` sequences."""
        if pool.endpoint is not None:   # a remote pool: its measured figures, as the planner costs it
            return batch * pool.endpoint.prefill_s(max(tokens - cached, 1))
        t = _up(tokens, PROMPT_BUCKET)
        c = min(max(cached, spec.cached_tokens), t - 1)
        return self.seconds(pool, spec.model_copy(update={"tokens": t, "cached_tokens": c}), batch)

    def prefill_compute(self, pool: Pool, spec: OpSpec, tokens: int, cached: int = 0) -> float:
        """The per-token part of a prefill's chunk, its matmul compute and its elementwise kernels' activation
        traffic (no weight reads, launches or fixed costs): what it adds to a unified replica's step that decodes a
        batch anyway (serving.py's step(B, c) = decode(B) + c x tau, tau from the same two terms). Both terms grow
        with the chunk's tokens; leaving the traffic out costed 8B chunks on an A40 25 % cheaper than the planner's
        tau, and at 30 requests/s, where prompts take 0.48 of each step, the step 62 ms against the planner's 85."""
        if pool.endpoint is not None:
            return max(tokens - cached, 1) / pool.endpoint.prefill_tokens_per_s
        t = _up(tokens, PROMPT_BUCKET)
        c = min(max(cached, spec.cached_tokens), t - 1)
        key = ("compute", pool.device, pool.tensor_parallel, pool.slice_fraction, spec, t, c)
        s = self._memo.get(key)
        if s is None:
            one = spec.model_copy(update={"tokens": t, "cached_tokens": c})
            cost = estimate(one, pool.device, 1, "graph", pool.tensor_parallel, catalog=self.catalog,
                            factors=self.factors)
            s = (cost.compute_s + cost.elementwise_s) / pool.slice_fraction
            self._memo[key] = s
        # both terms grow with the tokens computed: scale the bucket's cost to the chunk's own count (rounding a
        # 65-token prompt up to 80 costed it 23 % above the planner's tau)
        return s * (tokens - min(max(cached, spec.cached_tokens), tokens - 1)) / (t - c)

    def decode_step(self, pool: Pool, spec: OpSpec, batch: int, mean_ctx: float) -> float:
        """One decode step of `batch` sequences at mean context `mean_ctx` (the serving model's step cost)."""
        if pool.endpoint is not None:
            return pool.endpoint.step_s(batch)
        return self.seconds(pool, spec.model_copy(update={"ctx": _up(mean_ctx, CTX_BUCKET)}), batch)
