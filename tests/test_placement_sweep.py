"""Homogeneous baselines and the cost-versus-SLA frontier."""

from __future__ import annotations

import pytest

from plait.planner.placement import SLA, Candidate, Edge, PlacementProblem, Stage, solve
from plait.planner.placement.sweep import frontier, homogeneous_baselines


def _problem() -> PlacementProblem:
    def c(d: str, lat: float, p: float) -> Candidate:
        return Candidate(device=d, latency_s=lat, throughput=1000.0, price_per_hour=p)
    stages = [Stage(name="prefill", candidates=[c("h100", 0.05, 6.0), c("l4", 0.20, 1.0)]),
              Stage(name="decode", candidates=[c("h100", 0.30, 6.0), c("l4", 0.60, 1.0)]),
              Stage(name="tool", candidates=[c("cpu", 0.01, 0.2)])]
    edges = [Edge(src="prefill", dst="decode"), Edge(src="decode", dst="tool")]
    return PlacementProblem(stages=stages, edges=edges, sla=SLA(p95_s=0.70), qps=1.0)


def test_baselines_restrict_each_type_and_keep_cpu_tools() -> None:
    base = {b.device: b for b in homogeneous_baselines(_problem())}
    assert base["h100"].feasible and base["h100"].cost_per_hour == pytest.approx(12.2)
    assert not base["l4"].feasible and "critical path" in base["l4"].reason
    assert base["cpu"].feasible  # only the tool has a cpu candidate; the others keep theirs
    assert solve(_problem()).cost_per_hour == pytest.approx(7.2)  # mixed: prefill h100, decode l4


def test_frontier_is_monotone_and_reports_progress() -> None:
    seen: list[tuple[int, int]] = []
    pts = frontier(_problem(), [0.3, 0.4, 0.7, 1.0], progress=lambda n, total, _: seen.append((n, total)))
    assert pts[0].cost_per_hour is None
    costs = [p.cost_per_hour for p in pts[1:]]
    assert costs == pytest.approx([12.2, 7.2, 2.2])
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]
