"""Service times from the cost model (plait.planner.costmodel) for the batch actually running, memoized.

Token counts are rounded up to a bucket before costing (prefill prompts and encoder inputs to 16 tokens,
decode contexts to 32), so a run asks the cost model about a few hundred shapes, not one per step. A replica
on a slice of an accelerator (`slice_fraction` < 1) runs that many times slower, as the planner prices it.
"""

from __future__ import annotations

import math

from plait.planner.catalog import Catalog
from plait.planner.costmodel import estimate, transfer_seconds
from plait.planner.factors import Factors, builtin_factors
from plait.planner.plan import Pool
from plait.planner.workload import OpSpec

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
        key = (pool.device, pool.tensor_parallel, pool.slice_fraction, spec, batch)
        s = self._memo.get(key)
        if s is None:
            tp = 1 if spec.op == "py_call" else pool.tensor_parallel
            s = estimate(spec, pool.device, batch, "graph", tp, catalog=self.catalog, factors=self.factors).seconds
            if self.catalog.device(pool.device).kind != "cpu":
                s /= pool.slice_fraction
            self._memo[key] = s
        return s

    def prefill(self, pool: Pool, spec: OpSpec, tokens: int, batch: int = 1, cached: int = 0) -> float:
        """A prefill of `tokens` prompt tokens (the first `cached` already in the KV cache) for `batch` sequences."""
        t = _up(tokens, PROMPT_BUCKET)
        c = min(max(cached, spec.cached_tokens), t - 1)
        return self.seconds(pool, spec.model_copy(update={"tokens": t, "cached_tokens": c}), batch)

    def decode_step(self, pool: Pool, spec: OpSpec, batch: int, mean_ctx: float) -> float:
        """One decode step of `batch` sequences at mean context `mean_ctx` (the serving model's step cost)."""
        return self.seconds(pool, spec.model_copy(update={"ctx": _up(mean_ctx, CTX_BUCKET)}), batch)

    def link(self, nbytes: float, device: str) -> tuple[float, float]:
        """(bytes/s, latency s) of the network between servers, from the catalog's defaults."""
        bw = self.catalog.default("network_gbps").value * 1e9
        lat = transfer_seconds(0.0, device, "network", catalog=self.catalog, factors=self.factors)
        return bw, lat
