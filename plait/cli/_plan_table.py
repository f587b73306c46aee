"""The plan table printed by `plait plan`: the chosen configuration per stage beside its alternatives."""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table

from plait.planner.plan import Plan
from plait.planner.report import tables


def plan_table(plan: Plan) -> Table:
    """One row per configuration considered (chosen rows marked ✔), captioned with the fleet's totals."""
    considered = tables.candidates(plan)
    table = Table(title=f"plait plan: {plan.source}", caption=_caption(plan))
    for column in considered.header:
        table.add_column(column, justify="left" if column in ("stage", "device", "mode") else "right")
    last = None
    for row in considered.rows:
        stage = row[0] if row[0] != last else ""
        last = row[0]
        table.add_row(stage, *row[1:], style="bold green" if row[-1] else "dim")
    return table


def _caption(plan: Plan) -> str:
    fleet = ", ".join(f"{n} x {d}" for d, n in plan.fleet.items())
    sla = f" (SLA {plan.sla_p95_s * 1e3:.0f} ms)" if plan.sla_p95_s else ""
    return (f"fleet {fleet}: ${plan.cost_per_hour:,.2f}/hour ({plan.price_basis}), "
            f"${plan.cost_per_million_requests:,.2f} per million requests; "
            f"predicted p50 {plan.p50_s * 1e3:.0f} ms, p95 {plan.p95_s * 1e3:.0f} ms{sla}")


def price_table(plan: Plan) -> Table:
    """Each device type of the fleet: $/hour on the plan's basis, how it was taken and its source; flags in red."""
    prices = tables.prices(plan)
    table = Table(title=prices.title, caption=f"device types: {tables.device_types(plan)}")
    for column in prices.header:
        table.add_column(column, justify="right" if column == "$/hour" else "left", overflow="fold")
    for row, p in zip(prices.rows, plan.prices, strict=True):
        table.add_row(*(escape(c) for c in row), style="red" if p.flag else None)
    return table


def simulated_table(plan: Plan) -> Table:
    """Analytic beside simulated p50/p95 (and TTFT/TPOT where targets exist): the figures' rows only."""
    figures = tables.simulated(plan)
    assert figures is not None
    table = Table(title=figures.title)
    for i, column in enumerate(figures.header):
        table.add_column(column, justify="left" if i == 0 else "right")
    for row in figures.rows:
        if row[0] not in ("re-plan", "misses", "short"):
            table.add_row(*row)
    return table
