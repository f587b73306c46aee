"""The price rows a report shows: each device type of a fleet, its $/hour on the plan's basis, and its source."""

from __future__ import annotations

from plait.planner.catalog import Catalog
from plait.planner.catalog.prices import DevicePrice, device_price
from plait.planner.costmodel import PriceBasis, TcoParams, price_per_hour
from plait.planner.endpoint import RemoteEndpoint


def fleet_prices(devices: list[str], catalog: Catalog, basis: PriceBasis, tco: TcoParams | None = None,
                 endpoints: list[RemoteEndpoint] | None = None) -> list[DevicePrice]:
    """One row per device type (sorted): the cloud basis row of prices.py, or for tco the arithmetic used; a
    remote pool's row (of `endpoints`) is its declared price on either basis."""
    out = []
    remote = {e.device: e for e in endpoints or []}
    for name in sorted(devices):
        if name in remote:
            e = remote[name]
            out.append(DevicePrice(device=name, usd_per_hour=e.price_per_hour, quotes=0, flag="declared",
                                   basis=f"declared in the inventory for the endpoint {e.base_url} ({e.served_model})",
                                   source="the inventory's remote list"))
            continue
        d = catalog.device(name)
        if basis == "cloud":
            out.append(device_price(d))
            continue
        weak = [k for k in ("capex_usd", "tdp_w") if getattr(d, k).is_assumption]
        t = tco or TcoParams()
        out.append(DevicePrice(
            device=name, usd_per_hour=round(price_per_hour(d, "tco", t), 4),
            basis=f"capex ${d.capex_usd.value:,.0f} over {t.years:g} years at {t.rate:.0%} + "
                  f"{d.tdp_w.value:g} W at ${t.usd_per_kwh:g}/kWh",
            quotes=0, flag=", ".join(f"{k} is an assumption" for k in weak),
            source=d.capex_usd.source or "", url=d.capex_usd.url or ""))
    return out
