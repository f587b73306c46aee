"""An infeasible SLA or inventory explains itself: which stage's floor breaks it, and by how much."""

from __future__ import annotations

import pytest

from plait.planner.placement import (
    SLA,
    Candidate,
    Edge,
    InfeasibleInventory,
    InfeasibleSLA,
    LatencyCap,
    PlacementInputError,
    PlacementProblem,
    Stage,
    solve,
)
from plait.sdk.errors import PlaitError


def _cand(device: str, lat: float, price: float = 1.0, thr: float = 1000.0, tp: int = 1) -> Candidate:
    return Candidate(device=device, latency_s=lat, throughput=thr, price_per_hour=price, tp=tp)


def test_tpot_cap_names_the_stage_and_both_numbers() -> None:
    decode = Stage(name="llm.decode", description="decode of llama-3.1-70b",
                   candidates=[_cand("H100", 0.038 * 512), _cand("A100", 0.061 * 512)],
                   caps=[LatencyCap(max_s=0.020, units=512, per="token", name="time per output token")])
    problem = PlacementProblem(stages=[decode], sla=SLA(p95_s=60.0))
    with pytest.raises(InfeasibleSLA, match=r"^decode of llama-3.1-70b needs at least 38 ms per token on "
                                            r"the fastest device \(H100\); the time per output token allows 20"):
        solve(problem)


def test_stage_floor_above_the_sla() -> None:
    problem = PlacementProblem(
        stages=[Stage(name="search", description="vector search", visits=3,
                      candidates=[_cand("cpu", 0.050), _cand("gpu", 0.020, 4.0)])], sla=SLA(p95_s=0.050))
    with pytest.raises(InfeasibleSLA, match=r"^vector search needs at least 60 ms per request on the fastest "
                                            r"device \(gpu: 20 ms per execution x 3 in series at p95\); the SLA p95 allows 50"):
        solve(problem)


def test_critical_path_of_floors_above_the_sla() -> None:
    stages = [Stage(name=n, candidates=[_cand("gpu", 0.030)]) for n in ("plan", "act", "reply")]
    edges = [Edge(src="plan", dst="act"), Edge(src="act", dst="reply")]
    problem = PlacementProblem(stages=stages, edges=edges, sla=SLA(p95_s=0.080))
    with pytest.raises(InfeasibleSLA, match=r"^the critical path needs at least 90 ms even with every stage "
                                            r"on its fastest device; the SLA p95 allows 80 \(over by 10 ms\)"):
        solve(problem)


def test_throughput_floor_against_the_inventory() -> None:
    problem = PlacementProblem(stages=[Stage(name="prefill", candidates=[_cand("H100", 0.05, thr=10, tp=2)])],
                               qps=40, inventory={"H100": 4}, sla=SLA(p95_s=1.0))
    with pytest.raises(InfeasibleInventory, match=r"^stage 'prefill' needs at least 10 H100 devices to serve 40 "
                                                  r"executions/s at a stable utilization; the inventory has 4"):
        solve(problem)


def test_transfers_make_it_infeasible_and_the_solver_says_by_how_much() -> None:
    """Floors pass (20 ms), but the fast types differ and the 1 GB transfer adds 40.8 ms (40 ms plus its M/D/1 wait at 4 % of the link); gpu is limited."""
    stages = [Stage(name="a", candidates=[_cand("gpu", 0.010), _cand("cpu", 0.050)]),
              Stage(name="b", candidates=[_cand("tpu", 0.010), _cand("cpu", 0.050)])]
    problem = PlacementProblem(stages=stages, edges=[Edge(src="a", dst="b", bytes=1e9)], sla=SLA(p95_s=0.030))
    with pytest.raises(InfeasibleSLA, match=r"^no placement within the inventory meets the p95 SLA of 30 ms: "
                                            r"the fastest reaches 60\.84 ms \(over by 30\.84 ms\)"):
        solve(problem)


def test_errors_are_plait_errors_and_bad_input_is_named() -> None:
    assert issubclass(InfeasibleSLA, PlaitError) and issubclass(PlacementInputError, PlaitError)
    stages = [Stage(name="prefill", candidates=[_cand("gpu", 0.01)]),
              Stage(name="decode", candidates=[_cand("gpu", 0.01)])]
    with pytest.raises(PlacementInputError, match=r"(?s)unknown stage 'decod'.*Did you mean 'decode'"):
        solve(PlacementProblem(stages=stages, edges=[Edge(src="prefill", dst="decod")]))
    with pytest.raises(PlacementInputError, match="stages must form a DAG; found the cycle"):
        solve(PlacementProblem(stages=stages, edges=[Edge(src="prefill", dst="decode"),
                                                     Edge(src="decode", dst="prefill")]))
