"""The plan table printed by `plait plan`: the chosen configuration per stage beside its alternatives."""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table

from plait.planner.plan import Plan
from plait.planner.report import tables


def plan_table(plan: Plan) -> Table:
    """One row per configuration considered (chosen rows marked ✔), captioned with the fleet's totals and targets.

    The report's batch column is left out, so the table fits 160 columns with stage names and device types
    whole."""
    considered = tables.candidates(plan)
    keep = [i for i, column in enumerate(considered.header) if column != "batch"]
    table = Table(title=f"plait plan: {plan.source}", caption=_caption(plan))
    for i in keep:
        column = considered.header[i]
        table.add_column(column, justify="left" if column in ("stage", "pool", "role", "device") else "right",
                         no_wrap=column != "pool", overflow="fold")   # long pool ids fold, nothing is cut
    last = None
    for row in considered.rows:
        cells = [row[i] for i in keep]
        table.add_row(cells[0] if row[0] != last else "", *cells[1:], style="bold green" if row[-1] else "dim")
        last = row[0]
    return table


def _caption(plan: Plan) -> str:
    fleet = ", ".join(f"{n} x {d}" for d, n in plan.fleet.items())
    predicted = ", ".join(f"{what.removesuffix(' (slowest call)')} {value * 1e3:,.1f} ms"
                          + (f" (target {target * 1e3:,.0f})" if target else "")
                          for what, value, target in tables.targets(plan))
    return (f"fleet {fleet}: ${plan.cost_per_hour:,.2f}/hour ({plan.price_basis}), "
            f"${plan.cost_per_million_requests:,.2f} per million requests; predicted {predicted}\n"
            f"{plan.candidates_note}")


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
