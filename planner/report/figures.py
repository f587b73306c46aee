"""Report figures drawn with matplotlib and returned as PNG bytes, so the HTML can embed them."""

from __future__ import annotations

import io

from plait.planner.plan import Plan
from plait.planner.report import tables


def _png(fig: object) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")  # type: ignore[attr-defined]
    plt.close(fig)  # type: ignore[arg-type]
    return buf.getvalue()


def _pyplot():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and in CI
    import matplotlib.pyplot as plt

    return plt


def frontier_png(plan: Plan) -> bytes:
    """TCO against the SLA target: the price of each millisecond of latency."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    feasible = [p for p in plan.frontier if p.cost_per_hour is not None]
    infeasible = [p for p in plan.frontier if p.cost_per_hour is None]
    if feasible:
        ax.plot([p.sla_p95_s * 1e3 for p in feasible], [p.cost_per_hour for p in feasible],
                marker="o", label="cheapest fleet")
        for p in feasible:   # each point's plan replayed: its simulated p95
            if p.simulated_p95_s is not None:
                ax.annotate(f"{p.simulated_p95_s * 1e3:,.0f}", (p.sla_p95_s * 1e3, p.cost_per_hour),
                            textcoords="offset points", xytext=(0, 6), ha="center", fontsize=7)
    for p in infeasible:
        ax.axvline(p.sla_p95_s * 1e3, color="0.8", linestyle=":")
    if plan.sla_p95_s is not None:
        ax.plot([plan.sla_p95_s * 1e3], [plan.cost_per_hour], marker="*", markersize=14,
                color="tab:red", linestyle="none", label="chosen plan")
    ax.set_xlabel("SLA target, p95 (ms); labels: simulated p95 (ms)" if any(
        p.simulated_p95_s is not None for p in feasible) else "SLA target, p95 (ms)")
    ax.set_ylabel(f"$ per hour ({plan.price_basis})")
    ax.set_title(tables.frontier_title(plan))
    ax.grid(alpha=0.3)
    ax.legend()
    return _png(fig)


def baselines_png(plan: Plan) -> bytes:
    """The plan's $/hour beside the cheapest homogeneous fleet of each device type."""
    plt = _pyplot()
    rows = [("plait (mixed)", plan.cost_per_hour)]
    rows += [(b.device, b.cost_per_hour) for b in plan.baselines if b.feasible and b.cost_per_hour is not None]
    fig, ax = plt.subplots(figsize=(6.4, 0.4 * len(rows) + 1.2))
    names = [r[0] for r in rows][::-1]
    values = [float(r[1]) for r in rows][::-1]
    colors = ["tab:blue" if n != "plait (mixed)" else "tab:red" for n in names]
    ax.barh(names, values, color=colors)
    ax.set_xlabel(f"$ per hour ({plan.price_basis})")
    ax.set_title("Mixed fleet versus homogeneous fleets (same SLA and rate)")
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


def critical_path_png(plan: Plan) -> bytes:
    """Where the p95 goes: one bar per stage on the critical path, transfers included."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 0.35 * max(len(plan.critical_path), 1) + 1.4))
    names = [f"{s.stage} ({s.device})" for s in plan.critical_path][::-1]
    p95 = [s.p95_s * 1e3 for s in plan.critical_path][::-1]
    xfer = [s.transfer_s * 1e3 for s in plan.critical_path][::-1]
    ax.barh(names, p95, label="stage p95")
    ax.barh(names, xfer, left=p95, label="transfer in")
    ax.set_xlabel("milliseconds")
    ax.set_title(f"Critical path: p95 {plan.p95_s * 1e3:.0f} ms")
    ax.legend()
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


FIGURES = {
    "frontier": (frontier_png, "TCO versus SLA target"),
    "baselines": (baselines_png, "Mixed fleet versus homogeneous baselines"),
    "critical_path": (critical_path_png, "p95 along the critical path"),
}
