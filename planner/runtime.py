"""How each device type runs: plait's engine runtime, how a slice is made, and its server's host CPU.

Read from planner/catalog/servers.yaml (one row per device type; a type missing there is remote-only with
no slices and no host cores, and says so). `runnable` is what `plait plan --runnable-only` keeps.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from plait.planner.catalog import DeviceSpec

Runtime = Literal["cuda", "rocm", "cpu", "remote"]

HOST_CPU = "genoa-64"
"""The CPU server whose cores stand in for a GPU server's host cores when costing work on them (the planner
and the simulator both cost host work this way)."""


class ServerRow(BaseModel):
    """One device type's runtime, slice mechanism and host CPU (per accelerator)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    runtime: Runtime = Field(description="cuda, rocm, cpu: plait's engine runs there; remote: another engine only")
    slice: Literal["mig", "mps", "none"] = Field(description="how a fraction of one device is made")
    mig: dict[str, str] = Field(default_factory=dict, description="fraction ('0.5') -> MIG profile ('3g.40gb')")
    host_cores: int = Field(default=0, ge=0, description="host CPU cores per accelerator (GPU servers), cores")
    host_mem_gb: float = Field(default=0.0, ge=0, description="host memory per accelerator, GB")


@cache
def servers() -> dict[str, ServerRow]:
    text = resources.files("plait.planner.catalog").joinpath("servers.yaml").read_text()
    return {name: ServerRow.model_validate(row) for name, row in yaml.safe_load(text).items()}


def server(device: str) -> ServerRow:
    """The row of `device`; an unknown type is remote-only, without slices or host cores."""
    return servers().get(device, ServerRow(runtime="remote", slice="none"))


def runnable(device: str) -> bool:
    """plait's own engine can run on this type (cuda, rocm or cpu)."""
    return server(device).runtime != "remote"


def slice_of(device: DeviceSpec, share: float) -> tuple[Literal["none", "mig", "mps"], float, str | None]:
    """(mechanism, fraction, MIG profile) of a replica holding `share` of one device."""
    row = server(device.name)
    if share >= 1.0 or device.kind == "cpu":
        return "none", 1.0, None
    if row.slice == "mig":
        return "mig", share, row.mig.get(f"{share:g}")
    return "mps", share, None
