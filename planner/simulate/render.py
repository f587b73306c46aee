"""The tables `plait simulate` prints (rich), kept apart from the simulation itself."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table

from plait.planner.simulate.spec import Percentiles, SimResult


def _ms(x: float) -> str:
    return f"{x * 1e3:,.1f}"


def _row(p: Percentiles) -> list[str]:
    return [_ms(p.p50), _ms(p.p95), _ms(p.p99)]


def result_tables(r: SimResult, title: str, analytic: tuple[float, float] | None = None) -> Group:
    """End-to-end and per-call latency, then per-pool load, for one simulation."""
    lat = Table(title=f"plait simulate: {title}")
    for c in ("what", "p50 ms", "p95 ms", "p99 ms"):
        lat.add_column(c, justify="left" if c == "what" else "right")
    lat.add_row("end to end", *_row(r.e2e), style="bold")
    if analytic is not None:
        lat.add_row("end to end, planned (analytic)", _ms(analytic[0]), _ms(analytic[1]), "", style="dim")
    for site in r.calls:
        call = site.site.partition(":")[2]
        lat.add_row(f"TTFT {call}", *_row(site.first_token))   # from the request's arrival, as the target
        lat.add_row("  from the call's issue", *_row(site.ttft), style="dim")
        if site.tpot.n:
            lat.add_row(f"TPOT {call}", *_row(site.tpot))
    pools = Table(title="pools")
    for c in ("pool", "device x n", "util", "wait ms p50/p95", "batch mean/max", "preempt", "L / λW"):
        pools.add_column(c, justify="left" if c in ("pool", "device x n") else "right")
    for p in r.pools:
        pools.add_row(p.id, f"{p.device} x {p.replicas}", f"{p.utilization:.2f}",
                      f"{_ms(p.wait.p50)} / {_ms(p.wait.p95)}", f"{p.mean_batch:.2f} / {p.max_batch}",
                      str(p.preemptions), f"{p.littles_l:.3f} / {p.littles_lambda_w:.3f}")
    sla = ""
    if r.within_sla is not None and r.goodput_qps is not None:
        sla = f"; within SLA {r.within_sla:.1%}, goodput {r.goodput_qps:.2f} req/s"
    pools.caption = (f"{r.requests:,} requests measured at {r.offered_qps:.2f} req/s offered ({r.policy}), "
                     f"{r.simulated_s:,.0f} s simulated in {r.wall_s:.1f} s{sla}")
    return Group(lat, pools)
