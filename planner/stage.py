"""What the placement solver asks: a stage's latency, throughput, devices, $/hour and fit on one candidate.

    >>> from plait.planner.workload import OpSpec
    >>> c = stage_cost(OpSpec(op="decode", model="llama-3.1-8b", ctx=2048), "h100-sxm", batch=32, mode="graph")
    >>> (c.devices_per_replica, c.fits, round(c.usd_per_hour, 4))
    (1, True, 6.5175)
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict, Field

from plait.planner.catalog import Catalog, CatalogError, load_catalog
from plait.planner.costmodel import (
    Mode,
    PriceBasis,
    Regime,
    TcoParams,
    estimate,
    price_assumptions,
    price_per_hour,
)
from plait.planner.factors import Factors
from plait.planner.workload import HOST_OPS, OpSpec


class StageCost(BaseModel):
    """One (stage, device, batch, mode, degree) candidate, reduced to the numbers a solver needs."""

    model_config = ConfigDict(frozen=True)

    op: OpSpec
    device: str
    batch: int
    mode: Mode
    tp: int
    latency_s: float = Field(description="one execution of the batch (a decode step for decode), s")
    throughput_per_s: float = Field(description="items per second per replica: batch / latency "
                                                "(decode: tokens/s; prefill/encode: sequences/s)")
    devices_per_replica: int = Field(description="devices one replica occupies (= tp)")
    usd_per_hour: float = Field(description="price of one replica per hour on `price_basis`")
    price_basis: PriceBasis
    fits: bool
    offloaded_kv: bool
    footprint_bytes: float = Field(description="memory needed per device")
    kv_transfer_bytes: float = Field(description="prefill: KV-cache bytes to send to the decode stage (whole batch)")
    regime: Regime
    assumptions: tuple[str, ...]


def stage_cost(op: OpSpec, device: str, batch: int = 1, mode: Mode = "graph", tp: int = 1, *,
               basis: PriceBasis = "cloud", tco: TcoParams | None = None, catalog: Catalog | None = None,
               factors: Factors | None = None) -> StageCost:
    """Cost a stage on one candidate; see StageCost for the fields. Raises CatalogError for unknown names."""
    cat = catalog or load_catalog()
    dev = cat.device(device)
    c = estimate(op, dev, batch, mode, tp, catalog=cat, factors=factors)
    devices = 1 if op.op in HOST_OPS else tp
    return StageCost(op=op, device=dev.name, batch=batch, mode=mode, tp=tp, latency_s=c.seconds,
                     throughput_per_s=batch / c.seconds, devices_per_replica=devices,
                     usd_per_hour=devices * price_per_hour(dev, basis, tco), price_basis=basis, fits=c.fits,
                     offloaded_kv=c.offloaded_kv, footprint_bytes=c.footprint_bytes,
                     kv_transfer_bytes=c.kv_transfer_bytes, regime=c.regime,
                     assumptions=tuple(dict.fromkeys([*c.assumptions, *price_assumptions(dev, basis)])))


def candidates(op: OpSpec, devices: Iterable[str] | None = None,
               batches: Iterable[int] = (1, 2, 4, 8, 16, 32, 64, 128), modes: Iterable[Mode] = ("eager", "graph"),
               degrees: Iterable[int] = (1, 2, 4, 8), *, extra_degrees: int = 1, basis: PriceBasis = "cloud",
               tco: TcoParams | None = None,
               allow_offload: bool = False, catalog: Catalog | None = None,
               factors: Factors | None = None) -> list[StageCost]:
    """Every candidate that fits, in a deterministic order (device, degree, mode, batch).

    Degrees above 1 are tried only on accelerators: from the smallest degree that fits, `extra_degrees` more
    (a larger degree costs more devices per replica but cuts latency, which a tight SLA may need).
    CPUs run eager only.
    """
    cat = catalog or load_catalog()
    out: list[StageCost] = []
    for name in (devices if devices is not None else sorted(cat.devices)):
        dev = cat.device(name)
        host_op = op.op in HOST_OPS
        fitting = 0
        for t in (1,) if (dev.kind == "cpu" or host_op) else tuple(degrees):
            found = False
            for mode in ("eager",) if (dev.kind == "cpu" or host_op) else tuple(modes):
                for b in batches:
                    try:
                        c = stage_cost(op, dev.name, b, mode, t, basis=basis, tco=tco, catalog=cat, factors=factors)
                    except CatalogError:
                        break
                    if not c.fits or (c.offloaded_kv and not allow_offload):
                        break   # larger batches need more memory
                    out.append(c)
                    found = True
            fitting += found
            if fitting > extra_degrees:
                break
    return out
