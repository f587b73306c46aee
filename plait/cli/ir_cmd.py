"""`plait ir FILE:AGENT --stage agent|ops|placed`: trace an agent, compile it to a stage and print the module."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from plait.cli._agent import check_positive, traced
from plait.cli._errors import user_errors

STAGES = ("agent", "ops", "placed")


def ir(
    target: Annotated[str, typer.Argument(metavar="FILE:AGENT", help="e.g. examples/rag.py:answer")],
    stage: Annotated[str, typer.Option(
        "--stage", help="agent: one op per step; ops: per-device operators (after canonicalize, cse); "
                        "placed: ops with their device pools and xfer ops, from `plait plan`.")] = "agent",
    generic: Annotated[bool, typer.Option(
        "--generic", help="Print MLIR's generic form (what upstream MLIR parses).")] = False,
    locations: Annotated[bool, typer.Option(
        "--loc/--no-loc", help="End each op with its loc(\"file.py\":LINE:0).")] = True,
    sla_p95_ms: Annotated[float | None, typer.Option(
        "--sla-p95-ms", help="p95 latency target, ms; overrides the decorator's SLA p95.")] = None,
    qps: Annotated[float | None, typer.Option(
        "--qps", help="Request rate, requests/s; overrides the decorator's qps.")] = None,
    inventory: Annotated[Path | None, typer.Option(
        "--inventory", help="placed: YAML file of the device types and counts available.")] = None,
    price: Annotated[Literal["cloud", "tco"], typer.Option("--price", help="placed: the price basis.")] = "cloud",
    verify: Annotated[bool, typer.Option(
        "--verify/--no-verify", help="Also parse and verify the module with upstream MLIR (if installed).")] = True,
) -> None:
    """Trace FILE:AGENT, compile it to --stage and print the MLIR module."""
    check_positive(sla_p95_ms=sla_p95_ms, qps=qps)
    with user_errors():
        from plait.ir.module import print_module
        from plait.ir.pipeline import IRStageError, compile_graph

        if stage not in STAGES:
            raise IRStageError(f"unknown stage {stage!r}; the stages are: {', '.join(STAGES)}\n"
                               "  To fix: pass --stage agent, --stage ops or --stage placed.")
        graph = traced(target, sla_p95_ms, qps, need_rate=stage == "placed")
        if stage == "placed":
            from plait.planner.catalog import load_catalog
            from plait.planner.inventory import load_inventory
            from plait.planner.planning import plan_agent

            catalog = load_catalog()
            fleet = load_inventory(inventory, catalog) if inventory is not None else None
            module = plan_agent(graph, source=target, inventory=fleet, price_basis=price, catalog=catalog,
                                sweep_points=0).placed
        else:
            module = compile_graph(graph, stage)
        text = print_module(module, generic=generic, locations=locations)
        if verify:
            from plait.ir.upstream import verify_upstream

            if note := verify_upstream(module, text if generic else None):
                typer.echo(note, err=True)
    typer.echo(text, nl=False)
