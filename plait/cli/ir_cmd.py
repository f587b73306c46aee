"""`plait ir FILE:AGENT --stage agent|ops|placed|program`: trace an agent, compile it to a stage and print it.

`program` plans as `placed` does, then splits the placed module into one device program per pool (codegen) and
prints them as text; `--out DIR` also writes one `<pool>.program.json` per pool.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from plait.cli._agent import check_positive, traced
from plait.cli._errors import user_errors

STAGES = ("agent", "ops", "placed", "program")
PLANNED = ("placed", "program")


def ir(
    target: Annotated[str, typer.Argument(metavar="FILE:AGENT", help="e.g. examples/rag.py:answer")],
    stage: Annotated[str, typer.Option(
        "--stage", help="agent: one op per step; ops: per-device operators (after canonicalize, cse); "
                        "placed: ops with their device pools and xfer ops, from `plait plan`; "
                        "program: one device program per pool, each op bound to a kernel.")] = "agent",
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
    out: Annotated[Path | None, typer.Option(
        "--out", help="program: also write one <pool>.program.json per pool into this folder.")] = None,
) -> None:
    """Trace FILE:AGENT, compile it to --stage and print the MLIR module."""
    check_positive(sla_p95_ms=sla_p95_ms, qps=qps)
    with user_errors():
        from plait.ir.module import print_module
        from plait.ir.pipeline import IRStageError, compile_graph

        if stage not in STAGES:
            raise IRStageError(f"unknown stage {stage!r}; the stages are: {', '.join(STAGES)}\n"
                               "  To fix: pass --stage agent, --stage ops, --stage placed or --stage program.")
        if out is not None and stage != "program":
            raise IRStageError(f"--out writes device programs, but --stage is {stage!r}\n"
                               "  To fix: add --stage program, or drop --out (`plait plan --out` writes placed.mlir).")
        graph = traced(target, sla_p95_ms, qps, need_rate=stage in PLANNED)
        plan = None
        if stage in PLANNED:
            from plait.planner.catalog import load_catalog
            from plait.planner.inventory import load_inventory
            from plait.planner.planning import plan_agent

            catalog = load_catalog()
            fleet = load_inventory(inventory, catalog) if inventory is not None else None
            result = plan_agent(graph, source=target, inventory=fleet, price_basis=price, catalog=catalog,
                                sweep_points=0)
            module, plan = result.placed, result.plan
        else:
            module = compile_graph(graph, stage)
        text = print_module(module, generic=generic, locations=locations)
        if verify:
            from plait.ir.upstream import verify_upstream

            if note := verify_upstream(module, text if generic else None):
                typer.echo(note, err=True)
        if stage == "program":
            assert plan is not None
            text = _programs(module, plan, catalog, out)
    typer.echo(text, nl=False)


def _programs(module: Any, plan: Any, catalog: Any, out: Path | None) -> str:
    """The device programs of a placed module as text; with `out`, also written there (one file per pool)."""
    from plait.codegen.build import build_programs
    from plait.codegen.program import write_programs
    from plait.codegen.render import render_programs
    from plait.sdk.errors import PlaitError

    programs = build_programs(module, plan, catalog)
    text = render_programs(programs)
    if out is not None:
        try:
            paths = write_programs(programs, out)
        except OSError as err:
            raise PlaitError(f"cannot write device programs to --out {out}: {err.strerror or err}\n"
                             "  To fix: pass a folder you can write, e.g. --out out/programs.") from None
        text += f"// wrote {len(paths)} program files to {out}\n"
    return text
