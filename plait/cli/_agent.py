"""Load FILE:AGENT and trace it, with the command line's SLA and rate overriding the decorator's."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from plait.sdk.graph import AgentGraph


def check_positive(**flags: float | None) -> None:
    """Each given flag must be a finite number above 0 (nan and inf are not rates or targets)."""
    for flag, value in flags.items():
        if value is not None and not (math.isfinite(value) and value > 0):
            raise typer.BadParameter(f"must be a finite number > 0, got {value:g}",
                                     param_hint="--" + flag.replace("_", "-"))


def traced(target: str, sla_p95_ms: float | None = None, qps: float | None = None, *,
           sla_p50_ms: float | None = None, ttft_ms: float | None = None,
           tpot_ms: float | None = None, need_rate: bool = False) -> AgentGraph:
    """The AgentGraph of FILE:AGENT, its SLA fields overridden where given; raises PlaitErrors on bad input.

    With `need_rate` (planning), an agent with no request rate on its decorator or the command line is refused
    rather than planned at a rate nobody chose.
    """
    from plait.sdk import SLA, trace
    from plait.sdk.decorators import def_loc
    from plait.sdk.errors import PlaitError
    from plait.sdk.loader import load_agent

    agent = load_agent(target)
    if need_rate and qps is None and agent.qps is None:
        raise PlaitError(f"agent {agent.name!r} has no request rate, and a plan is sized for one\n"
                         f"  {def_loc(agent.fn)}: @plait.agent without qps=\n"
                         "  To fix: pass --qps N (requests per second), or set it on the decorator: "
                         "@plait.agent(qps=5).")
    overrides = {k: v for k, v in (("p95_ms", sla_p95_ms), ("p50_ms", sla_p50_ms), ("ttft_ms", ttft_ms),
                                   ("tpot_ms", tpot_ms)) if v is not None}
    sla = (agent.sla or SLA()).model_copy(update=overrides) if overrides else agent.sla
    return trace(agent, sla=sla, qps=qps)
