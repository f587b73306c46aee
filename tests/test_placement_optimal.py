"""The MILP is an optimizer: it equals brute force on seeded random chains and DAGs, and beats greedy."""

from __future__ import annotations

import pytest

from plait.planner.placement import (
    SLA,
    Candidate,
    Edge,
    InfeasiblePlacement,
    PlacementProblem,
    SolveOptions,
    Stage,
    solve,
)
from plait.planner.placement.bruteforce import brute_force
from plait.planner.placement.generate import random_pooled_problem, random_problem
from plait.planner.placement.greedy import greedy

OPTS = SolveOptions(extra_replicas=2)


def _cost_or_none(problem: PlacementProblem, opts: SolveOptions) -> float | None:
    try:
        return solve(problem, opts).cost_per_hour
    except InfeasiblePlacement:
        return None


CASES = [("plain", s) for s in range(24)] + [("pooled", s) for s in range(16)]


@pytest.mark.parametrize(("kind", "seed"), CASES)
def test_milp_equals_brute_force(kind: str, seed: int) -> None:
    """Plain chains and DAGs, and the same with pool options (unified or shared: taken by all their stages
    or none, no transfer inside), same-type links and link capacity: the MILP's bill equals brute force's
    (also from the LP-rounding incumbent), and greedy's is never lower."""
    problem = random_problem(seed, dag=seed % 2 == 1) if kind == "plain" else random_pooled_problem(seed)
    truth = brute_force(problem, OPTS)
    got = _cost_or_none(problem, OPTS)
    if truth is None:
        assert got is None
        return
    assert got == pytest.approx(truth.cost_per_hour, rel=1e-6)
    placed = solve(problem, OPTS)
    assert placed.feasible and placed.stats is not None and placed.stats.status == "optimal"
    assert placed.p95_s <= problem.sla.p95_s * (1 + 1e-7)  # type: ignore[operator]
    # the LP-rounding incumbent path gives the same optimum
    assert _cost_or_none(problem, OPTS.model_copy(update={"lp_rounding_above": 0})) == pytest.approx(
        truth.cost_per_hour, rel=1e-6)
    g = greedy(problem, OPTS)
    assert not g.feasible or g.cost_per_hour >= truth.cost_per_hour * (1 - 1e-9)


def test_random_pooled_cases_take_pools_and_hit_link_limits() -> None:
    """The seeds above are not vacuous: some optima take a two-stage pool, some are infeasible."""
    problems = [random_pooled_problem(s) for s in range(16)]
    found = [brute_force(p, OPTS) for p in problems]
    assert any(f is None for f in found)
    assert any(f is not None and any(c.pool_option is not None and len(p.pools[c.pool_option].members) == 2
                                     for c in f.choices) for p, f in zip(problems, found, strict=True))


def test_random_cases_cover_feasible_infeasible_and_dags() -> None:
    outcomes = {brute_force(random_problem(s, dag=s % 2 == 1), OPTS) is None for s in range(24)}
    assert outcomes == {True, False}


def _stage(name: str, *cands: tuple[str, float, float]) -> Stage:
    return Stage(name=name, candidates=[Candidate(device=d, latency_s=lat, throughput=1000.0, price_per_hour=p)
                                        for d, lat, p in cands])


def test_greedy_pays_more_than_the_milp() -> None:
    """Greedy gives each stage half the SLA, so both take the fast $4 device; the MILP mixes for $5."""
    problem = PlacementProblem(
        stages=[_stage("a", ("gpu", 0.020, 4.0), ("cpu", 0.070, 1.0)),
                _stage("b", ("gpu", 0.020, 4.0), ("cpu", 0.070, 1.0))],
        edges=[Edge(src="a", dst="b")], sla=SLA(p95_s=0.100), qps=1.0)
    g, m = greedy(problem), solve(problem)
    assert g.feasible and g.cost_per_hour == pytest.approx(8.0)
    assert m.cost_per_hour == pytest.approx(5.0) and m.p95_s <= 0.100


def test_greedy_is_infeasible_where_the_milp_is_not() -> None:
    """Greedy puts a on cpu and b on gpu, each cheapest within its share; the KV transfer breaks the SLA."""
    problem = PlacementProblem(
        stages=[_stage("a", ("cpu", 0.050, 1.0), ("gpu", 0.045, 3.0)),
                _stage("b", ("gpu", 0.045, 1.0), ("cpu", 0.050, 3.0))],
        edges=[Edge(src="a", dst="b", bytes=0.25e9)], sla=SLA(p95_s=0.100), qps=1.0)
    g, m = greedy(problem), solve(problem)
    assert not g.feasible and "exceeds the SLA" in g.violations[0]
    assert m.feasible and m.cost_per_hour == pytest.approx(4.0)
    assert {c.device for c in m.choices} in ({"cpu"}, {"gpu"}) and not m.transfers


def test_prefill_and_decode_split_when_the_transfer_pays() -> None:
    """Disaggregation: prefill on the compute-rich type, decode on the bandwidth-rich one, KV costed."""
    problem = PlacementProblem(
        stages=[_stage("prefill", ("h100", 0.05, 6.0), ("mi300", 0.12, 5.0)),
                _stage("decode", ("h100", 0.40, 6.0), ("mi300", 0.25, 5.0))],
        edges=[Edge(src="prefill", dst="decode", bytes=1e9)], sla=SLA(p95_s=0.35), qps=1.0)
    m = solve(problem)
    assert [c.device for c in m.choices] == ["h100", "mi300"]
    size, rho = 1e9 / 25e9, 1e9 * 1.0 / 25e9        # M/D/1 mean wait behind the edge's own traffic
    assert m.transfers[0].seconds == pytest.approx(size * (1 + rho / (2 * (1 - rho))) + 10e-6)
    assert m.p95_s == pytest.approx(0.05 + m.transfers[0].seconds + 0.25, rel=1e-3)


# Plain seed 9 stands where 5 stood: 5 moves 30 GB/s over a 25 GB/s link since transfers queue (M/D/1) and is
# infeasible without the limit; 9 is a DAG on all three types like it. The pooled ones put stages on the host
# CPUs of gpu-a servers (gpu-a/host), which are gpu-a hardware, not a type of their own.
@pytest.mark.parametrize(("kind", "seed"), [("plain", s) for s in (0, 1, 2, 3, 9, 8)]
                         + [("pooled", s) for s in (0, 2, 6, 12)])
def test_max_device_types_equals_brute_force_over_type_subsets(kind: str, seed: int) -> None:
    from itertools import combinations

    problem = random_problem(seed, dag=seed % 2 == 1) if kind == "plain" else random_pooled_problem(seed)
    assert solve(problem, OPTS).feasible
    hosts = problem.hosts

    def hardware(device: str) -> str:
        return hosts.get(device, device)

    types = sorted({hardware(c.device) for s in problem.stages for c in s.candidates}
                   | {p.device for p in problem.pools})
    for n in (1, 2):
        best = None
        for keep in combinations(types, min(n, len(types))):
            stages = [s.model_copy(update={"candidates": [c for c in s.candidates if hardware(c.device) in keep]})
                      for s in problem.stages]
            pools = [p for p in problem.pools if p.device in keep]
            pooled = {m.stage for p in pools for m in p.members}
            if any(not s.candidates and s.name not in pooled for s in stages):
                continue
            truth = brute_force(problem.model_copy(update={"stages": stages, "pools": pools}), OPTS)
            if truth is not None and (best is None or truth.cost_per_hour < best):
                best = truth.cost_per_hour
        limited = OPTS.model_copy(update={"max_device_types": n})
        got = _cost_or_none(problem, limited)
        assert (got is None) == (best is None), (n, got, best)
        if best is None:   # feasible without the limit (solve above): the error names the limit
            with pytest.raises(InfeasiblePlacement, match=f"no placement on at most {n} device type"):
                solve(problem, limited)
        else:
            assert got == pytest.approx(best, rel=1e-6)
            assert len({hardware(c.device) for c in solve(problem, limited).choices}) <= n
