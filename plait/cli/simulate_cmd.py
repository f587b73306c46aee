"""`plait simulate FILE:AGENT --plan DIR`: replay a plan's pools request by request (SimPy) and print latencies."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from plait.cli._agent import check_positive, traced
from plait.cli._errors import output_console, user_errors


def simulate(
    target: Annotated[str, typer.Argument(metavar="FILE:AGENT", help="e.g. examples/rag.py:answer")],
    plan_dir: Annotated[Path | None, typer.Option(
        "--plan", help="A `plait plan --out` folder (its plan.json). Default: plan the agent first.")] = None,
    requests: Annotated[int, typer.Option("--requests", min=1, help="Requests to simulate.")] = 2000,
    qps: Annotated[float | None, typer.Option("--qps", help="Poisson arrival rate, requests/s. Default: the "
                                                            "plan's rate.")] = None,
    arrivals: Annotated[Path | None, typer.Option(
        "--arrivals", help="Text file of arrival times (s), one per line; replaces the Poisson stream.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of every draw (arrivals, tokens, loops, arms).")] = 0,
    policy: Annotated[Literal["fifo", "edf"], typer.Option(
        "--policy", help="Queue order: fifo, or edf (earliest deadline: arrival + the SLA's p95).")] = "fifo",
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
) -> None:
    """Simulate FILE:AGENT on its plan: end-to-end p50/p95/p99, TTFT/TPOT per LLM call, per-pool load, SLA share."""
    check_positive(qps=qps)
    with user_errors():
        from rich.console import Console
        from rich.progress import Progress

        from plait.planner.catalog import load_catalog
        from plait.planner.simulate import SimOptions, check_plan, load_plan, pools_of
        from plait.planner.simulate import simulate as run_simulation
        from plait.planner.simulate.arrivals import from_file

        catalog = load_catalog()
        graph = traced(target, need_rate=plan_dir is None)   # planning needs a rate
        if plan_dir is not None:
            plan = load_plan(plan_dir)
            if plan.scale is not None:   # planned with its LLMs at a scale (plait plan --scale, --device local)
                from plait.sdk.models import at_scale

                graph = at_scale(graph, plan.scale)
        else:
            from plait.planner.planning import plan_agent

            plan = plan_agent(graph, source=target, catalog=catalog, sweep_points=0).plan
        sites = check_plan(plan, graph, catalog)
        pools = pools_of(plan)
        times = from_file(arrivals, requests) if arrivals is not None else None
        options = SimOptions(requests=requests, qps=qps or plan.qps, seed=seed, policy=policy, arrivals=times,
                             sla_p95_s=plan.sla_p95_s, ttft_s=_ms(graph.sla.ttft_ms if graph.sla else None),
                             tpot_s=_ms(graph.sla.tpot_ms if graph.sla else None))
        err = Console(stderr=True)
        with Progress(console=err, transient=True, disable=as_json or requests < 5000) as bar:
            task = bar.add_task("simulating requests", total=requests)
            result = run_simulation(graph, pools, options, catalog=catalog,
                                    progress=lambda done, total: bar.update(task, completed=done, total=total),
                                    sites=sites)
    if as_json:
        typer.echo(result.model_dump_json(indent=2))
        return

    from rich.console import Console

    from plait.planner.simulate.render import result_tables

    console = output_console()
    console.print(result_tables(result, target, (plan.p50_s, plan.p95_s)))
    for note in result.notes:
        typer.echo(f"note: {note}")


def _ms(ms: float | None) -> float | None:
    return None if ms is None else ms / 1e3
