"""The report's tables as plain rows, built once and rendered to Markdown, HTML and the terminal."""

from __future__ import annotations

from dataclasses import dataclass

from plait.planner.plan import Candidate, Plan


@dataclass(frozen=True)
class Table:
    title: str
    header: list[str]
    rows: list[list[str]]


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e3:.1f}"


def _usd(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


def targets(plan: Plan) -> list[tuple[str, float, float | None]]:
    """(what, predicted, target) for p50, p95 and, for agents with LLM calls, TTFT and TPOT: every target the
    user set, with the planner's analytic prediction."""
    out = [("p50", plan.p50_s, plan.sla_p50_s), ("p95", plan.p95_s, plan.sla_p95_s)]
    if plan.ttft_p95_s is not None:
        out.append(("TTFT p95 (slowest call)", plan.ttft_p95_s, plan.sla_ttft_s))
    if plan.tpot_s is not None:
        out.append(("TPOT (slowest call)", plan.tpot_s, plan.sla_tpot_s))
    return out


def summary(plan: Plan) -> Table:
    rows = [
        ["agent", plan.source],
        ["rate", f"{plan.qps:g} requests/s"],
        *[[what, f"{_ms(predicted)} ms predicted, " + (f"target {_ms(target)} ms" if target else "no target")]
          for what, predicted, target in targets(plan)],
        ["fleet", ", ".join(f"{n} x {d}" for d, n in sorted(plan.fleet.items()))],
        ["device types", device_types(plan)],
        [f"$ per hour ({plan.price_basis})", _usd(plan.cost_per_hour)],
        ["$ per million requests", _usd(plan.cost_per_million_requests)],
        *[["serving", line] for line in plan.decisions],
        ["solver", f"HiGHS {plan.solver.status}, gap {plan.solver.mip_gap:.2%}, "
                   f"{plan.solver.seconds * 1e3:.0f} ms, {plan.solver.variables} variables"],
    ]
    return Table("Summary", ["", ""], rows)


def device_types(plan: Plan) -> str:
    """How many kinds of hardware the fleet uses, against the --max-device-types limit when one was set."""
    n = len(plan.fleet)
    limit = (f" (limit {plan.max_device_types}, --max-device-types)" if plan.max_device_types is not None
             else " (no limit; --max-device-types N caps it)")
    return f"{n}{limit}"


def prices(plan: Plan) -> Table:
    """Each device type's $/hour on the plan's basis, how it was taken, its source, and any flag."""
    rows = [[p.device, f"{p.usd_per_hour:,.3f}", p.basis, p.flag or "-", f"{p.source} {p.url}".strip() or "-"]
            for p in plan.prices]
    return Table(f"Prices ({plan.price_basis} basis, $ per device-hour)",
                 ["device", "$/hour", "basis", "flag", "source"], rows)


def _share(plan: Plan, stage: str, share: float) -> str:
    """A stage's share of its device: whole cores for CPU work (a tool's 0.125 of a server reads '1 core')."""
    for pool in plan.pools:
        if pool.cpu_cores and any(site.stage == stage for site in pool.call_sites):
            return f"{pool.cpu_cores} core" + ("s" if pool.cpu_cores != 1 else "")
    return f"{share:g}"


def stages(plan: Plan) -> Table:
    rows = [[s.stage, s.device, str(s.replicas), str(s.devices_per_replica), _share(plan, s.stage, s.share),
             str(s.batch), s.mode,
             f"{s.visits:g}", _ms(s.latency_p50_s), _ms(s.latency_p95_s), f"{s.utilization:.0%}",
             _usd(s.cost_per_hour)] for s in plan.stages]
    header = ["stage", "device", "replicas", "TP", "share", "batch", "mode", "visits", "p50 ms", "p95 ms", "util",
              "$/hour"]
    return Table("Stages", header, rows)


PLAN_TABLE_TITLE = "Plan table: each stage's chosen configuration (✔) and its alternatives"


def _per_replica(c: Candidate) -> str:
    """What one replica holds: whole cores for CPU work, else devices (0.5: a slice)."""
    if c.cores:
        return f"{c.cores} core" + ("s" if c.cores != 1 else "")
    return f"{c.devices_per_replica * c.share:g}"


def candidates(plan: Plan) -> Table:
    """One row per configuration: a pool's $/hour on its first stage's row only, host CPUs at no charge of their
    own, and the whole plan's $/hour on every row (the pinned re-solve's, or infeasible)."""
    rows = []
    seen: set[str] = set()
    for c in plan.candidates:
        if c.plan_cost_per_hour is None:
            rows.append([c.stage, "", "", c.device, "-", "-", "-", "-", "-", "-",
                         "time limit" if c.note.startswith("not solved") else "infeasible", ""])
            continue
        pool_cost = ("host CPUs" if c.host else "same pool" if c.chosen and c.pool in seen
                     else _usd(c.cost_per_hour))
        if c.chosen:
            seen.add(c.pool)
        rows.append([c.stage, c.pool, c.role, c.device, str(c.devices_per_replica), _per_replica(c),
                     str(c.replicas), str(c.batch), _ms(c.latency_p95_s), pool_cost,
                     _usd(c.plan_cost_per_hour) + (f" ({c.note})" if c.note else ""),
                     "✔" if c.chosen else ""])
    return Table(f"{PLAN_TABLE_TITLE} ({plan.candidates_note})" if plan.candidates_note else PLAN_TABLE_TITLE, ["stage", "pool", "role", "device", "TP", "per replica", "replicas", "batch",
                                    "p95 ms", "pool $/h", "plan $/h", "chosen"], rows)


def critical_path(plan: Plan) -> Table:
    rows = [[s.stage, s.device, _ms(s.p50_s), _ms(s.p95_s), _ms(s.transfer_s)] for s in plan.critical_path]
    rows.append(["total", "", _ms(plan.p50_s), _ms(plan.p95_s), ""])
    return Table("Critical path", ["stage", "device", "p50 ms", "p95 ms", "transfer in ms"], rows)


def baselines(plan: Plan) -> Table:
    rows = []
    for b in sorted(plan.baselines, key=lambda b: (not b.feasible, b.cost_per_hour or 0.0)):
        saving = (f"{1 - plan.cost_per_hour / b.cost_per_hour:.0%}"
                  if b.feasible and b.cost_per_hour else "-")
        rows.append([b.device, _usd(b.cost_per_hour) if b.feasible else "infeasible", _ms(b.p95_s), saving,
                     b.reason])
    return Table("Homogeneous baselines (same SLA and rate)",
                 ["device", "$/hour", "p95 ms", "plait saves", "note"], rows)


def frontier(plan: Plan) -> Table:
    rows = [[_ms(p.sla_p95_s), _usd(p.cost_per_hour) if p.cost_per_hour is not None else "infeasible",
             _ms(p.p95_s), _ms(p.simulated_p95_s)] for p in plan.frontier]
    return Table(frontier_title(plan), ["SLA p95 ms", f"$/hour ({plan.price_basis})", "analytic p95 ms",
                                        "simulated p95 ms"], rows)


def frontier_title(plan: Plan) -> str:
    """The frontier's title, naming the price basis its dollars are on."""
    basis = "on-demand cloud prices" if plan.price_basis == "cloud" else "TCO: capex over 4 years + power"
    return f"TCO versus SLA ({basis})"


def transfers(plan: Plan) -> Table:
    rows = [[f"{t.src_stage} -> {t.dst_stage}", f"{t.src_device} -> {t.dst_device}",
             f"{t.bytes_per_request / 1e6:.3f}", f"{t.bandwidth_gb_s:.3f}", _ms(t.seconds)]
            for t in plan.transfers if t.bytes_per_request > 0]   # ordering-only edges move no data
    return Table("Transfers between pools", ["edge", "pools", "MB/request", "GB/s needed", "ms"], rows)


def pools(plan: Plan) -> Table:
    """The pool contract, one row per pool: what runs where, how, and for which calls."""
    rows = []
    for p in plan.pools:
        how = {"mig": f"MIG {p.mig_profile or p.slice_fraction}", "mps": f"MPS {p.slice_fraction:g}"}.get(p.slice, "")
        where = f"{p.device} host CPU" if p.host_cpu else p.device
        seqs = (f"{p.expected_sequences:.0f} / {p.max_sequences}" if p.expected_sequences is not None
                else str(p.max_sequences or "-"))
        rows.append([p.id, p.kind, p.role or "", where, p.runtime, how or "whole", str(p.tensor_parallel),
                     str(p.replicas), seqs, str(p.cpu_cores or ""), ", ".join(dict.fromkeys(c.loc or c.stage for c in p.call_sites))])
    return Table("Pools", ["pool", "kind", "role", "device", "runtime", "slice", "TP", "replicas",
                           "sequences (running / max)", "cores", "call sites"], rows)


def simulated(plan: Plan) -> Table | None:
    """Analytic beside simulated figures (None without a simulation), the re-plans and where a miss is short."""
    sim = plan.simulated
    if sim is None:
        return None
    rows = [["p50", _ms(plan.sla_p50_s), _ms(plan.p50_s), _ms(sim.p50_s)],
            ["p95", _ms(plan.sla_p95_s), _ms(plan.p95_s), _ms(sim.p95_s)]]
    ttft, tpot = sim.ttft_target_s, sim.tpot_target_s
    if ttft is not None or sim.ttft_p95_s is not None:
        rows.append(["TTFT p95 (slowest call)", _ms(ttft), _ms(sim.analytic_ttft_p95_s), _ms(sim.ttft_p95_s)])
    if tpot is not None or sim.tpot_p95_s is not None:
        rows.append(["TPOT p95 (slowest call)", _ms(tpot), _ms(plan.tpot_s), _ms(sim.tpot_p95_s)])
    if sim.within_sla is not None:
        rows.append(["requests within SLA", "", "", f"{sim.within_sla:.1%}"])
    rows += [["re-plan", "", "", line] for line in sim.replans]
    rows += [["misses", "", "", line] for line in sim.misses]
    if sim.busiest:
        rows.append(["short", "", "", sim.busiest])
    return Table(f"Analytic and simulated ({sim.requests:,} requests, seed {sim.seed})",
                 ["ms", "target", "analytic", "simulated"], rows)


def all_tables(plan: Plan) -> list[Table]:
    sim = simulated(plan)
    return [summary(plan), *([sim] if sim else []), pools(plan), prices(plan), stages(plan), critical_path(plan), baselines(plan),
            frontier(plan),
            transfers(plan), candidates(plan)]
