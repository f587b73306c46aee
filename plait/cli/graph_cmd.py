"""`plait graph FILE:AGENT`: trace an agent and print its AgentGraph as text or JSON."""

from __future__ import annotations

from typing import Annotated

import typer

from plait.cli._agent import check_positive, traced
from plait.cli._errors import user_errors


def graph(
    target: Annotated[str, typer.Argument(metavar="FILE:AGENT", help="e.g. examples/rag.py:answer")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the graph as JSON.")] = False,
    sla_p95_ms: Annotated[float | None, typer.Option(
        "--sla-p95-ms", help="p95 latency target, ms; overrides the decorator's SLA p95.")] = None,
    qps: Annotated[float | None, typer.Option(
        "--qps", help="Request rate, requests/s; overrides the decorator's qps.")] = None,
) -> None:
    """Trace FILE:AGENT and print its graph: one line per step, regions indented."""
    check_positive(sla_p95_ms=sla_p95_ms, qps=qps)
    with user_errors():
        result = traced(target, sla_p95_ms, qps)
    typer.echo(result.to_json() if as_json else str(result))
