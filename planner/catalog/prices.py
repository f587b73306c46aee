"""The cloud price basis: which providers a device type's $/hour is taken over, and which prices to flag.

Every device type's `cloud_usd_per_hour` is the median of its on-demand quotes (secure/1x tier) from the
providers of PROVIDER_SET, the specialist GPU clouds that planner/data/hardware/hardware.md prices for most
device types. Hyperscaler quotes (AWS, GCP, Azure) are listed in `cloud_quotes` but left out: they bundle
host vCPU and RAM and exist for only some types, so mixing them in made the H100 ($6.52) look dear beside an
MI300X that only small clouds quote. A device no provider of the set quotes keeps the median of what it has,
and every report flags it, as it flags a single quote.

    >>> from plait.planner.catalog import load_catalog
    >>> device_price(load_catalog().device("h100-sxm")).basis
    'median of 3 of 4 providers (runpod 3.49, lambda 4.29, coreweave 6.155)'
"""

from __future__ import annotations

import statistics

from pydantic import BaseModel, ConfigDict, Field

from plait.planner.catalog.schema import DeviceSpec

PROVIDER_SET: tuple[str, ...] = ("runpod", "lambda", "coreweave", "nebius")


class DevicePrice(BaseModel):
    """One device type's price on the cloud basis, with where it came from and whether to trust it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    device: str = Field(description="catalog name")
    usd_per_hour: float = Field(description="on-demand USD per device-hour (the catalog's cloud_usd_per_hour)")
    basis: str = Field(description="how the price was taken, in words, with the quotes used")
    quotes: int = Field(description="quotes from the provider set behind the price")
    flag: str = Field(default="", description="'' when 2+ providers of the set quote it; else why to distrust it")
    source: str = Field(default="", description="title of the price's source")
    url: str = Field(default="", description="address of the price's source")


def basis_median(quotes: dict[str, float]) -> tuple[float, dict[str, float]]:
    """The median of the quotes from PROVIDER_SET, or of all quotes when none is from the set."""
    inset = {k: v for k, v in quotes.items() if k in PROVIDER_SET}
    used = inset or quotes
    return round(statistics.median(used.values()), 4), used


def device_price(device: DeviceSpec) -> DevicePrice:
    """The price row of `device`: its cloud $/hour, the basis in words, and a flag when it is weak.

    Flags: "assumption" (no quote at all), "outside the provider set" (only other providers quote it),
    "single quote" (one provider of the set). A CPU server or user device without quotes is "assumption"
    when its figure is tagged so, else "user catalog" (its figure's own source stands).
    """
    fig = device.cloud_usd_per_hour
    src, url = fig.source or "", fig.url or ""
    if not device.cloud_quotes:
        flag = "assumption" if fig.is_assumption else "not from the provider set"
        basis = fig.note or (f"as given: {fig.source}" if fig.source else "as given")
        return DevicePrice(device=device.name, usd_per_hour=fig.value, basis=basis, quotes=0,
                           flag=flag, source=src, url=url)
    _, used = basis_median(device.cloud_quotes)
    listed = ", ".join(f"{k} {v:g}" for k, v in used.items())
    inset = [k for k in used if k in PROVIDER_SET]
    if not inset:
        basis, flag = f"median of {listed} (no provider of the set quotes it)", "outside the provider set"
    else:
        basis = f"median of {len(inset)} of {len(PROVIDER_SET)} providers ({listed})"
        flag = "single quote" if len(inset) == 1 else ""
    return DevicePrice(device=device.name, usd_per_hour=fig.value, basis=basis, quotes=len(inset), flag=flag,
                       source=src, url=url)


def price_mismatches(devices: dict[str, DeviceSpec]) -> list[str]:
    """Devices whose cloud_usd_per_hour is not the basis median of their cloud_quotes (empty when consistent)."""
    out = []
    for name, d in sorted(devices.items()):
        if d.cloud_quotes and abs(basis_median(d.cloud_quotes)[0] - d.cloud_usd_per_hour.value) > 1e-9:
            out.append(f"{name}: cloud_usd_per_hour {d.cloud_usd_per_hour.value:g} but the basis median of its "
                       f"quotes is {basis_median(d.cloud_quotes)[0]:g}")
    return out
