"""Why each device type a user owns cannot run a stage: the lines an infeasible-inventory error adds, per type.

    l40s: llama-3.1-70b needs 4 with tensor parallelism but nodes have 2
    l4: does not fit memory (llama-3.1-70b, even at tensor parallelism 8)
    l4: too slow for the time per output token target (best 9.5 ms per token)
"""

from __future__ import annotations

import math

from plait.planner.catalog import Catalog
from plait.planner.costmodel import PriceBasis
from plait.planner.grouping import StageWork
from plait.planner.inventory import Inventory
from plait.planner.placement import InfeasiblePlacement, LatencyCap
from plait.planner.runtime import server
from plait.planner.stage import candidates

DEGREES = (1, 2, 4, 8)


def why_not(stage: StageWork, device: str, caps: list[LatencyCap], basis: PriceBasis, catalog: Catalog,
            max_degree: int | None, owned: int) -> str | None:
    """Why `device` cannot run `stage` at all (memory, the node's size or the devices owned, a per-call target),
    or None if it can."""
    if stage.kind == "tool":
        return None
    model = stage.spec.model or stage.description
    found = candidates(stage.spec, [device], batches=(1,), modes=("graph",), degrees=DEGREES, extra_degrees=3,
                       basis=basis, catalog=catalog)
    if not found:
        return f"does not fit memory ({model}, even at tensor parallelism {DEGREES[-1]})"
    limit, what = (max_degree, "nodes have") if max_degree is not None and max_degree <= owned else (
        owned, "the inventory has")
    fits = [c for c in found if c.tp <= limit]
    if not fits:
        return f"{model} needs {min(c.tp for c in found)} with tensor parallelism but {what} {limit}"
    steps = stage.steps if stage.kind == "decode" else 1.0
    for cap in caps:
        best = min(c.latency_s * steps / cap.units for c in fits)   # batch 1 at the widest degree: the fastest
        if best > cap.max_s * (1 + 1e-9):
            return f"too slow for the {cap.name} target (best {best * 1e3:.3g} ms per {cap.per})"
    return None


def ruled_out(stages: list[StageWork], inventory: Inventory | None, caps: dict[str, list[LatencyCap]],
              basis: PriceBasis, catalog: Catalog) -> list[str]:
    """Per stage that some owned type cannot run, one line per such type; empty without an inventory."""
    if inventory is None or not (owned := {d: n for d, n in (inventory.counts() or {}).items() if n > 0}):
        return []
    lines = []
    for st in stages:
        reasons = [(d, r) for d in sorted(owned) if (r := why_not(st, d, caps.get(st.name, []), basis, catalog,
                                                                   inventory.max_degree(d), owned[d]))]
        if reasons:
            lines.append(f"  owned device types ruled out for {st.description}:")
            lines += [f"    {d}: {r}" for d, r in reasons]
    return lines


def no_cpu(stage: StageWork, inventory: Inventory | None, catalog: Catalog) -> str:
    """The error for a tool no CPU in the fleet can hold: no CPU server, and GPU servers with too few host cores."""
    cores = math.ceil(stage.tool_cpu - 1e-9)
    where = "the inventory" if inventory is not None and inventory.counts() is not None else "the catalog"
    counts = (inventory.counts() or {}) if inventory is not None else {}
    hosts = ", ".join(f"{d} {server(d).host_cores}" for d in sorted(counts)
                      if counts[d] > 0 and catalog.device(d).kind == "gpu")
    return (f"{stage.description} ({stage.loc}) needs {cores} CPU core{'s' if cores != 1 else ''} per worker, and "
            f"no CPU in {where} holds them: no CPU server, and "
            + (f"host cores per GPU ({hosts}; planner/catalog/servers.yaml) below {cores}" if hosts
               else "no GPU server with host cores")
            + ".\nTo fix: add a CPU server (e.g. spr-32 or genoa-64) to the inventory, or GPU servers with at least "
              f"{cores} host cores per device, or declare the tool with fewer cores (@plait.tool(cpu=...)).")


def explained(err: InfeasiblePlacement, lines: list[str]) -> InfeasiblePlacement:
    """`err` with the per-type lines before its 'To fix' (the same class, so callers match it as before)."""
    if not lines:
        return err
    text = str(err).splitlines()
    at = next((k for k, line in enumerate(text) if line.startswith("To fix")), len(text))
    return type(err)("\n".join(text[:at] + lines + text[at:]))
