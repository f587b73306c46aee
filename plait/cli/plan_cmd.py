"""`plait plan FILE:AGENT --out DIR`: the cheapest fleet that meets the SLA, the placed IR and the report."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from plait.cli._agent import check_positive, traced
from plait.cli._errors import output_console, user_errors

if TYPE_CHECKING:
    from plait.planner.catalog import Catalog
    from plait.planner.inventory import Inventory
    from plait.planner.placement.problem import SolveOptions
    from plait.planner.planning import PlanResult, Targets
    from plait.sdk.graph import AgentGraph


def _writable(out: Path) -> None:
    from plait.sdk.errors import PlaitError

    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".plait-write-check"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise PlaitError(f"cannot write the plan to --out {out}: {err.strerror or err}.\n"
                         "To fix: pass a folder you can write, e.g. --out out/plan.") from None


def plan(
    target: Annotated[str, typer.Argument(metavar="FILE:AGENT", help="e.g. examples/rag.py:answer")],
    out: Annotated[Path, typer.Option("--out", help="Folder for plan.json, placed.mlir, report.md/html.")],
    inventory: Annotated[Path | None, typer.Option(
        "--inventory", help="YAML file: device types and counts available, and links. Default: any, unlimited.")] = None,
    sla_p95_ms: Annotated[float | None, typer.Option(
        "--sla-p95-ms", help="End-to-end p95 target, ms; overrides the decorator's.")] = None,
    sla_p50_ms: Annotated[float | None, typer.Option(
        "--sla-p50-ms", help="End-to-end p50 target, ms; overrides the decorator's.")] = None,
    ttft_ms: Annotated[float | None, typer.Option(
        "--ttft-ms", help="Time to first token of every LLM call, ms (bounds each prefill).")] = None,
    tpot_ms: Annotated[float | None, typer.Option(
        "--tpot-ms", help="Time per output token of every LLM call, ms (bounds each decode).")] = None,
    qps: Annotated[float | None, typer.Option("--qps", help="Request rate, requests/s; overrides the decorator's.")] = None,
    price: Annotated[Literal["cloud", "tco"], typer.Option(
        "--price", help="cloud: on-demand $/hour; tco: capex over 4 years at 8% plus power at TDP.")] = "cloud",
    sweep: Annotated[int, typer.Option("--sweep", help="SLA targets in the TCO-versus-SLA frontier (0: none).")] = 9,
    runnable_only: Annotated[bool, typer.Option(
        "--runnable-only", help="Only device types plait's own engine runs on (cuda, rocm, cpu; not remote-only "
                                "ones such as Gaudi through vLLM).")] = False,
    verify: Annotated[bool, typer.Option(
        "--verify/--no-verify", help="Parse and verify placed.mlir with upstream MLIR (if installed).")] = True,
    catalog_file: Annotated[str | None, typer.Option(
        "--catalog", help="Extra catalog YAML (devices, models, or price overrides) laid over the built-in one, "
                          "as for plait cost.")] = None,
    max_device_types: Annotated[int | None, typer.Option(
        "--max-device-types", min=1, help="Use at most N kinds of hardware (a constraint in the MILP).")] = None,
    device: Annotated[str | None, typer.Option(
        "--device", help="Plan onto this one device type only: `local` is this machine (`plait calibrate --cpu` "
                         "measures it; its pools share its cores). Instead of --inventory.")] = None,
    scale: Annotated[str | None, typer.Option(
        "--scale", help="Plan the dense LLMs at this catalog scale (tiny, small: what runs without a checkpoint); "
                        "default: full size, or tiny with --device local.")] = None,
    simulate: Annotated[bool, typer.Option(
        "--simulate/--no-simulate", help="Replay the chosen plan (2,000 requests, seed 0) and plan again with a "
                                         "tightened target where the simulation misses one (at most 5 times).")] = True,
) -> None:
    """Plan FILE:AGENT: per stage the device, replicas, batch and mode at minimum $/hour under the SLA."""
    check_positive(sla_p95_ms=sla_p95_ms, sla_p50_ms=sla_p50_ms, ttft_ms=ttft_ms, tpot_ms=tpot_ms, qps=qps)
    with user_errors():
        from rich.console import Console
        from rich.progress import Progress

        from plait.cli._plan_table import plan_table, price_table, simulated_table
        from plait.planner.catalog import load_catalog
        from plait.planner.inventory import load_inventory
        from plait.planner.placement.problem import SolveOptions
        from plait.planner.planning import plan_agent
        from plait.planner.report import write_report
        from plait.planner.report.prices import fleet_prices

        _writable(out)   # before minutes of solving, not after
        catalog = load_catalog(catalog_file)
        options = SolveOptions(max_device_types=max_device_types) if max_device_types is not None else None
        fleet = load_inventory(inventory, catalog) if inventory is not None else None
        if device is not None:
            fleet, scale = device_inventory(device, inventory, scale, catalog)
        graph = traced(target, sla_p95_ms, qps, sla_p50_ms=sla_p50_ms, ttft_ms=ttft_ms, tpot_ms=tpot_ms,
                       need_rate=True)
        if scale is not None:
            from plait.sdk.models import at_scale

            graph = at_scale(graph, scale)
            typer.echo(f"planning {target} with its dense LLMs at their @{scale} size", err=True)
        # The bar appears once the frontier sweep starts, so an error before it prints alone.
        progress = Progress(console=Console(stderr=True), transient=True)
        task = progress.add_task("sweeping SLA targets", total=max(sweep, 1), start=False)

        def tick(done: int, total: int, sla_s: float) -> None:
            progress.start()
            progress.update(task, completed=done, total=total, description=f"frontier: SLA {sla_s * 1e3:.0f} ms")

        try:
            result = plan_agent(graph, source=target, inventory=fleet, price_basis=price, catalog=catalog,
                                sweep_points=sweep, progress=tick, options=options,
                                runnable_only=runnable_only, scale=scale)
        finally:
            if progress.live.is_started:
                progress.stop()
        if simulate:
            result = _checked(result, graph, target, fleet, price, catalog, options, runnable_only, sweep, scale)
        if verify:
            from plait.ir.upstream import verify_upstream

            if note := verify_upstream(result.placed, result.placed_text):
                typer.echo(note, err=True)
        endpoints = [p.endpoint for p in result.plan.pools if p.endpoint is not None]
        plan = result.plan.model_copy(update={"prices": fleet_prices(list(result.plan.fleet), catalog, price,
                                                                     endpoints=endpoints),
                                              "max_device_types": max_device_types})
        written = write_report(plan, out)
        (out / "placed.mlir").write_text(result.placed_text)
    console = output_console()
    console.print(plan_table(plan))
    console.print(price_table(plan))
    if plan.simulated is not None:
        console.print(simulated_table(plan))
        for line in [*plan.simulated.replans, *(f"simulation still misses {m}" for m in plan.simulated.misses)]:
            typer.echo(line)
        if plan.simulated.busiest:
            typer.echo(f"short: {plan.simulated.busiest}")
    for line in plan.decisions:
        typer.echo(line)
    typer.echo(f"wrote {written['plan']}, {out / 'placed.mlir'}, {written['markdown']}, {written['html']}")


def _checked(first: PlanResult, graph: AgentGraph, target: str, fleet: Inventory | None,
             price: Literal["cloud", "tco"], catalog: Catalog, options: SolveOptions | None,
             runnable_only: bool, sweep: int, scale: str | None) -> PlanResult:
    """Simulate the chosen plan; re-plan (without a sweep) while it misses a target; then sweep the final plan's
    frontier again if it was re-planned, and replay each frontier point."""
    from plait.planner.planning import plan_agent
    from plait.planner.simcheck import check_by_simulation, simulate_frontier, simulate_plan

    last: list[Targets] = []

    def replan(targets: Targets) -> PlanResult:
        again = plan_agent(graph, source=target, inventory=fleet, price_basis=price, catalog=catalog,
                           sweep_points=0, options=options, runnable_only=runnable_only, targets=targets,
                           scale=scale)
        last.append(targets)   # only a plan that solved becomes the result
        return again

    result = check_by_simulation(graph, first, replan, lambda plan: simulate_plan(plan, graph, catalog))
    frontier = first.plan.frontier
    if last and sweep > 0:   # re-planned: the final plan's own frontier, under its targets
        frontier = plan_agent(graph, source=target, inventory=fleet, price_basis=price, catalog=catalog,
                              sweep_points=sweep, options=options, runnable_only=runnable_only,
                              targets=last[-1], scale=scale).plan.frontier
    plan = simulate_frontier(result.plan.model_copy(update={"frontier": frontier}), graph, catalog)
    return replace(result, plan=plan)


def device_inventory(device: str, inventory: Path | None, scale: str | None,
                     catalog: Catalog) -> tuple[Inventory, str | None]:
    """`--device NAME` as an inventory of that type only, and the scale to plan at (`local`: tiny by default)."""
    from plait.planner.catalog import LOCAL_DEVICE
    from plait.planner.inventory import one_type
    from plait.sdk.errors import PlaitError

    if inventory is not None:
        raise PlaitError("give --device or --inventory, not both\n  To fix: name the device in the inventory file.")
    name = catalog.device(device).name   # an unknown name (or a missing `local`) says how to fix it
    return one_type(name), scale or ("tiny" if name == LOCAL_DEVICE else None)
