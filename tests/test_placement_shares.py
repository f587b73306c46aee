"""Slices (share < 1) pack onto whole devices, and the MILP minimizes the whole-device bill."""

from __future__ import annotations

import functools
import math

import pytest

from plait.planner.placement import (
    SLA,
    Candidate,
    Edge,
    InfeasiblePlacement,
    Placement,
    PlacementInputError,
    PlacementProblem,
    SolveOptions,
    Stage,
    solve,
)
from plait.planner.placement.bruteforce import brute_force
from plait.planner.placement.generate import random_shared_problem
from plait.planner.placement.graph import build_graph, max_edge_times
from plait.planner.placement.greedy import greedy
from plait.planner.placement.options import enumerate_options

OPTS = SolveOptions(extra_replicas=2)


def _bill(problem: PlacementProblem, placed: Placement) -> float:
    """Whole devices times one price per type, from the candidates (independent of the solver's code)."""
    price = {c.device: c.price_per_hour / (c.tp * c.share) for s in problem.stages for c in s.candidates}
    return sum(price[d] * n for d, n in placed.devices.items())


def _units(placed: Placement) -> dict[str, float]:
    out: dict[str, float] = {}
    for c in placed.choices:
        out[c.device] = out.get(c.device, 0.0) + c.replicas * c.devices_per_replica * c.share
    return out


@functools.cache
def _truth(seed: int) -> Placement | None:
    return brute_force(random_shared_problem(seed), OPTS)


@pytest.mark.parametrize("seed", range(24))
def test_milp_equals_brute_force_with_slices(seed: int) -> None:
    problem = random_shared_problem(seed)
    truth = _truth(seed)
    try:
        placed = solve(problem, OPTS)
    except InfeasiblePlacement:
        assert truth is None
        return
    assert truth is not None
    assert placed.cost_per_hour == pytest.approx(truth.cost_per_hour, rel=1e-6)
    assert placed.cost_per_hour == pytest.approx(_bill(problem, placed), rel=1e-9)
    assert placed.feasible and placed.stats is not None and placed.stats.status == "optimal"
    for d, u in _units(placed).items():
        assert placed.devices[d] == math.ceil(u - 1e-9)
        assert d not in problem.inventory or placed.devices[d] <= problem.inventory[d]
    lp = solve(problem, OPTS.model_copy(update={"lp_rounding_above": 0}))
    assert lp.cost_per_hour == pytest.approx(truth.cost_per_hour, rel=1e-6)
    g = greedy(problem, OPTS)  # greedy reports the whole-device bill of what it picks
    assert g.cost_per_hour == pytest.approx(_bill(problem, g), rel=1e-9)


def test_random_slice_cases_pack_and_cover_both_outcomes() -> None:
    """Some seeded optimum packs slices of two stages onto one device; some seeds are infeasible."""
    packed, infeasible = False, False
    for seed in range(24):
        truth = _truth(seed)
        if truth is None:
            infeasible = True
            continue
        for d, n in truth.devices.items():
            fractional = [c for c in truth.choices if c.device == d and c.share < 1]
            packed |= len(fractional) >= 2 and n < sum(math.ceil(c.replicas * c.share - 1e-9) for c in fractional)
    assert packed and infeasible


def _half_or_l4(name: str, l4_price: float = 3.5) -> Stage:
    return Stage(name=name, candidates=[
        Candidate(device="mi300x", share=0.5, latency_s=0.02, throughput=50.0, price_per_hour=3.0),
        Candidate(device="l4", latency_s=0.02, throughput=50.0, price_per_hour=l4_price)])


def test_two_halves_share_a_device_and_the_third_rents_a_small_one() -> None:
    """Halves of a $6 device cost $3 pro rata, under the $3.50 L4: three halves look like $9, but rent
    two devices ($12). The whole-device optimum packs two halves on one mi300x and puts one stage on an
    L4: $9.50."""
    problem = PlacementProblem(stages=[_half_or_l4(n) for n in "abc"], sla=SLA(p95_s=1.0), qps=1.0)
    placed = solve(problem)
    assert placed.cost_per_hour == pytest.approx(9.5)
    assert placed.devices == {"l4": 1, "mi300x": 1}
    assert sorted(c.device for c in placed.choices) == ["l4", "mi300x", "mi300x"]
    assert sum(c.cost_per_hour for c in placed.choices) == pytest.approx(9.5)
    brute = brute_force(problem)
    assert brute is not None and brute.cost_per_hour == pytest.approx(9.5)


def test_packing_beats_renting_separate_smaller_devices() -> None:
    """Two stages: a half each of one $6 device beats two $3.50 L4s ($7), though neither half alone does
    (a lone half still rents the whole $6 device)."""
    two = PlacementProblem(stages=[_half_or_l4(n) for n in "ab"], sla=SLA(p95_s=1.0), qps=1.0)
    placed = solve(two)
    assert placed.cost_per_hour == pytest.approx(6.0) and placed.devices == {"mi300x": 1}
    assert [c.share for c in placed.choices] == [0.5, 0.5]
    one = PlacementProblem(stages=[_half_or_l4("a")], sla=SLA(p95_s=1.0), qps=1.0)
    assert solve(one).devices == {"l4": 1}  # $3.50 < a whole mi300x at $6


def test_a_quarter_slice_next_to_a_whole_device_rounds_up() -> None:
    """A quarter-slice prefill plus a full decode on mi300x is 1.25 devices, billed as 2; an L4 prefill
    ($2) then beats the $1.50 pro-rata quarter."""
    prefill = Stage(name="prefill", candidates=[
        Candidate(device="mi300x", share=0.25, latency_s=0.04, throughput=25.0, price_per_hour=1.5),
        Candidate(device="l4", latency_s=0.05, throughput=20.0, price_per_hour=2.0)])
    decode = Stage(name="decode", candidates=[
        Candidate(device="mi300x", latency_s=0.2, throughput=5.0, price_per_hour=6.0)])
    problem = PlacementProblem(stages=[prefill, decode], edges=[Edge(src="prefill", dst="decode")],
                               sla=SLA(p95_s=1.0), qps=1.0)
    placed = solve(problem)
    assert placed.choice("prefill").device == "l4" and placed.cost_per_hour == pytest.approx(8.0)
    # tied to mi300x, the prefill's quarter takes a second device
    only = problem.model_copy(update={"stages": [prefill.model_copy(update={"candidates": prefill.candidates[:1]}),
                                                 decode]})
    placed = solve(only)
    assert placed.devices == {"mi300x": 2} and placed.cost_per_hour == pytest.approx(12.0)
    assert placed.choice("prefill").cost_per_hour == pytest.approx(1.5)  # the stage's pro-rata share


def test_inventory_limits_whole_devices() -> None:
    """One mi300x holds two halves: the third stage must go to the L4 even when it costs more."""
    problem = PlacementProblem(stages=[_half_or_l4(n, l4_price=9.0) for n in "abc"], sla=SLA(p95_s=1.0),
                               qps=1.0, inventory={"mi300x": 1})
    placed = solve(problem)
    assert placed.devices == {"l4": 1, "mi300x": 1} and placed.cost_per_hour == pytest.approx(15.0)
    unlimited = solve(problem.model_copy(update={"inventory": {}}))
    assert unlimited.devices == {"mi300x": 2} and unlimited.cost_per_hour == pytest.approx(12.0)


def test_two_device_prices_on_a_sliced_type_are_an_input_error() -> None:
    stages = [Stage(name="embed", candidates=[
                  Candidate(device="h100", share=0.25, latency_s=0.01, throughput=100.0, price_per_hour=1.5,
                            label="quarter")]),
              Stage(name="decode", candidates=[
                  Candidate(device="h100", tp=2, latency_s=0.1, throughput=10.0, price_per_hour=14.0)])]
    with pytest.raises(PlacementInputError, match=r"(?s)device type 'h100' has two prices per whole device: "
                                                  r"stage 'embed' candidate 0 \(quarter\) implies \$6/hour, "
                                                  r"stage 'decode' candidate 0 implies \$7/hour"):
        solve(PlacementProblem(stages=stages, sla=SLA(p95_s=1.0)))


def test_pruning_keeps_a_slice_that_fills_free_room() -> None:
    """The L4 ($2.90) is faster and cheaper than a half mi300x ($3 pro rata), so pro-rata pruning would
    drop the half. But 'big' leaves half a rented mi300x free: there the half costs nothing ($12 in all,
    against $14.90 with the L4). The half frees no whole device alone (lo = 0), so it is kept."""
    big = Stage(name="big", candidates=[
        Candidate(device="mi300x", share=0.5, latency_s=2.0, throughput=0.5, price_per_hour=3.0)])
    a = Stage(name="a", candidates=[
        Candidate(device="mi300x", share=0.5, latency_s=0.03, throughput=50.0, price_per_hour=3.0),
        Candidate(device="l4", latency_s=0.02, throughput=50.0, price_per_hour=2.9)])
    problem = PlacementProblem(stages=[big, a], sla=SLA(p95_s=100.0), qps=1.0)
    en = enumerate_options(problem, SolveOptions(), max_edge_times(problem, build_graph(problem)))
    assert {en.devices[int(d)] for d in en.stages[1].device} == {"mi300x", "l4"}
    placed = solve(problem)
    assert placed.choice("big").replicas == 3 and placed.choice("a").device == "mi300x"
    assert placed.devices == {"mi300x": 2} and placed.cost_per_hour == pytest.approx(12.0)
    # without slices the cheaper, faster L4 still removes a whole mi300x ($6) across types
    whole = PlacementProblem(stages=[Stage(name="a", candidates=[
        Candidate(device="mi300x", latency_s=0.03, throughput=50.0, price_per_hour=6.0),
        Candidate(device="l4", latency_s=0.02, throughput=50.0, price_per_hour=2.9)])], sla=SLA(p95_s=1.0))
    en = enumerate_options(whole, SolveOptions(), max_edge_times(whole, build_graph(whole)))
    assert {en.devices[int(d)] for d in en.stages[0].device} == {"l4"}
