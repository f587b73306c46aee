"""The fleet a plan may use: device types and counts, and the links between pools (`--inventory FILE`)."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from plait.planner.catalog import Catalog, did_you_mean
from plait.sdk.errors import PlaitError

EXAMPLE = """\
devices:            # device type (plait cost catalog names) -> how many you have; omitted types are unavailable
  h100-sxm: 8
  l4: 16
  spr-32: 4
links:              # between two different pools; the first match wins, '*' matches any type
  - between: [h100-sxm, l4]
    bandwidth_gbps: 50     # GB/s
    latency_us: 5
  - between: ['*', '*']
    bandwidth_gbps: 12.5   # 100 Gb/s Ethernet
    latency_us: 20
"""


class InventoryError(PlaitError):
    """The inventory file is missing, not YAML, or names something plait does not know."""


class LinkSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    between: tuple[str, str] = Field(description="two device types, or '*'")
    bandwidth_gbps: float = Field(gt=0, description="GB/s per direction")
    latency_us: float = Field(ge=0, description="one-way latency, microseconds")


class Inventory(BaseModel):
    """Device types and counts available (None: any type, unlimited) and the links between pools."""

    model_config = ConfigDict(extra="forbid")
    devices: dict[str, int] | None = Field(None, description="device type -> devices available")
    links: list[LinkSpec] = []


def load_inventory(path: str | Path, catalog: Catalog) -> Inventory:
    """Read and check an inventory YAML file; every error names the file and the key, and how to fix it."""
    path = Path(path)
    fix = f"To fix: write it like this:\n{EXAMPLE}"
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise InventoryError(f"inventory file {path} does not exist.\n{fix}") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise InventoryError(f"inventory file {where} is not valid YAML: {getattr(err, 'problem', err)}.\n"
                             f"{fix}") from None
    try:
        inventory = Inventory.model_validate(data if data is not None else {})
    except ValidationError as err:
        first = err.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        raise InventoryError(f"inventory file {path}: {key}: {first['msg']}.\n{fix}") from None
    for name, count in (inventory.devices or {}).items():
        if name.lower() not in catalog.devices:
            raise InventoryError(f"inventory file {path}: unknown device type {name!r}."
                                 f"{did_you_mean(name.lower(), sorted(catalog.devices))}\n"
                                 f"To fix: use one of {', '.join(sorted(catalog.devices))}.")
        if count < 0:
            raise InventoryError(f"inventory file {path}: devices.{name} is {count}; counts must be >= 0.")
    for link in inventory.links:
        for name in link.between:
            if name != "*" and name.lower() not in catalog.devices:
                raise InventoryError(f"inventory file {path}: link names unknown device type {name!r}."
                                     f"{did_you_mean(name.lower(), sorted(catalog.devices))}")
    return inventory
