"""Encoders and vector indexes shared by call sites: one pool serving every call of one model (or index).

For each configuration (device, batch, degree, whole devices) that every call site of the group can run,
and the fewest stable replicas and one more, a PoolOption serving all of them: one M/D/c queue on the
summed rate, each call's service time its own (`Candidate.latency_s`), the wait shared. The solver takes
it or the call sites' own pools, whichever is cheaper under their bounds.
"""

from __future__ import annotations

import numpy as np

from plait.planner.grouping import StageGraph
from plait.planner.placement import Candidate, PoolMember, PoolOption
from plait.planner.placement.queueing import min_replicas, wait_quantile
from plait.planner.pooling import EXTRA_REPLICAS, PoolInfo

KINDS = {"encode": "encoder", "search": "search"}


def _key(c: Candidate) -> tuple[str, int, str, int]:
    return c.device, c.batch, c.mode, c.tp


def shared_options(stages: StageGraph, candidates: dict[str, list[Candidate]], qps: float,
                   util: float = 0.85) -> list[tuple[PoolOption, PoolInfo]]:
    """Pool options for every model (encoders) or index (searches) called from two or more stages."""
    groups: dict[tuple[str, str], list[str]] = {}
    for st in stages.stages:
        if st.kind in KINDS:
            what = st.spec.model if st.kind == "encode" else st.name.split(":", 1)[1].split("@")[0]
            groups.setdefault((st.kind, what or ""), []).append(st.name)
    by_name = {s.name: s for s in stages.stages}
    out: list[tuple[PoolOption, PoolInfo]] = []
    for (kind, what), names in sorted(groups.items()):
        if len(names) < 2:
            continue
        per = [{_key(c): c for c in candidates[n] if c.share >= 1.0} for n in names]
        lam = np.array([qps * by_name[n].visits for n in names])
        for key in sorted(set.intersection(*(set(p) for p in per))):
            cs = [p[key] for p in per]
            mu = lam.sum() / max(float(sum(lam_s / c.throughput for lam_s, c in zip(lam, cs, strict=True))), 1e-12)
            r0 = int(min_replicas(np.array([lam.sum()]), np.array([mu]), util)[0])
            for r in range(r0, r0 + EXTRA_REPLICAS + 1):
                w95, w50 = (wait_quantile(q, r, float(lam.sum()), mu) for q in (0.95, 0.5))
                members = [PoolMember(stage=n, p95_s=w95 + c.latency_s * by_name[n].work_p95, p50_s=w50 + c.latency_s,
                                      service_s=c.latency_s, utilization=float(lam.sum() / (r * mu)))
                           for n, c in zip(names, cs, strict=True)]
                label = f"{KINDS[kind]} {what} on {key[0]} tp{key[3]} b{key[1]} x{r}: shared by {len(names)} calls"
                out.append((PoolOption(label=label, role="shared", device=key[0], tp=key[3], replicas=r,
                                       batch=key[1], price_per_hour=r * cs[0].price_per_hour, members=members),
                            PoolInfo("", what, 1, 1, None, 1.0, (), kind=KINDS[kind])))
    return out
