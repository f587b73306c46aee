"""The fleet a plan may use: device types and counts, and the links between pools (`--inventory FILE`)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from plait.planner.catalog import Catalog, Figure, did_you_mean
from plait.planner.endpoint import RemoteEndpoint
from plait.planner.validation import first_problem, yaml_line
from plait.sdk.errors import PlaitError

EXAMPLE = """\
devices:            # device type (plait cost catalog names) -> how many you have; omitted types are unavailable
  l4: 16
  spr-32: 4
nodes:              # servers: their devices count too; a tensor-parallel group stays inside one node
  - device: h100-sxm
    count: 2                 # servers
    devices_per_node: 8
    scaleup_gb_s: 450        # GB/s (gigabytes) per direction between the node's devices (NVLink); 0: PCIe only
links:              # between two different pools; the first match wins, '*' matches any type
  - between: [h100-sxm, l4]
    bandwidth_gb_s: 50     # GB/s
    latency_us: 5
  - between: ['*', '*']
    bandwidth_gb_s: 12.5   # 100 Gb/s Ethernet
    latency_us: 20
remote:             # OpenAI-compatible endpoints (vLLM, SGLang, plait serve --model): given capacity at its price
  - name: vllm-a
    model: llama-3.1-8b          # the catalog model it serves
    base_url: http://10.0.0.5:8000/v1
    served_model: meta-llama/Llama-3.1-8B-Instruct
    price_per_hour: 2.50         # USD
    prefill_tokens_per_s: 9000   # measured: plait cost --remote URL prints these lines
    decode_tokens_per_s: {1: 95.0, 8: 80.0}   # concurrent calls -> tokens/s of each
    max_sequences: 64
    overhead_s: 0.02
    api_key_env: VLLM_API_KEY    # the variable's name, never the key
"""


class InventoryError(PlaitError):
    """The inventory file is missing, not YAML, or names something plait does not know."""


class LinkSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    between: tuple[str, str] = Field(description="two device types, or '*'")
    bandwidth_gb_s: float = Field(gt=0, description="GB/s per direction")
    latency_us: float = Field(ge=0, description="one-way latency, microseconds")


class NodeSpec(BaseModel):
    """Servers of one device type: how many, how many devices each, and the link between those devices."""

    model_config = ConfigDict(extra="forbid")
    device: str = Field(description="device type of every device in the node")
    count: int = Field(ge=0, description="nodes (servers) available")
    devices_per_node: int = Field(ge=1, description="devices in one node: the largest tensor-parallel group")
    scaleup_gb_s: float | None = Field(None, ge=0, description="GB/s per direction between the node's devices "
                                                               "(NVLink-class); 0: none, PCIe only; default: "
                                                               "the catalog's figure")


class Inventory(BaseModel):
    """Device types and counts available (None: any type, unlimited), nodes, and the links between pools."""

    model_config = ConfigDict(extra="forbid")
    devices: dict[str, int] | None = Field(None, description="device type -> devices available")
    nodes: list[NodeSpec] = []
    links: list[LinkSpec] = []
    remote: list[RemoteEndpoint] = Field(default_factory=list, description=(
        "OpenAI-compatible endpoints, each a pool of given capacity at its declared price"))

    def counts(self) -> dict[str, int] | None:
        """Devices available per type, nodes included; None when neither limits anything."""
        if self.devices is None and not self.nodes:
            return None
        out = {k.lower(): v for k, v in (self.devices or {}).items()}
        for node in self.nodes:
            key = node.device.lower()
            out[key] = out.get(key, 0) + node.count * node.devices_per_node
        return out

    def max_degree(self, device: str) -> int | None:
        """The largest tensor-parallel degree on `device`: its biggest node (None: no node says)."""
        sizes = [n.devices_per_node for n in self.nodes if n.device.lower() == device.lower()]
        return max(sizes) if sizes else None

    def apply(self, catalog: Catalog) -> Catalog:
        """The catalog with each node's scale-up link in place of the catalog's figure."""
        devices = dict(catalog.devices)
        for node in self.nodes:
            if node.scaleup_gb_s is None:
                continue
            key = node.device.lower()
            figure = Figure(value=node.scaleup_gb_s, unit="GB/s", tag="assumption",
                            note="from the inventory's node description")
            devices[key] = devices[key].model_copy(update={"scaleup_gbps": figure})
        return replace(catalog, devices=devices)


def load_inventory(path: str | Path, catalog: Catalog) -> Inventory:
    """Read and check an inventory YAML file; every error names the file and the key, and how to fix it."""
    path = Path(path)
    fix = f"To fix: write it like this:\n{EXAMPLE}"
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise InventoryError(f"inventory file {path} does not exist.\n{fix}") from None
    except yaml.YAMLError as err:
        line = yaml_line(err)
        where = f"{path}:{line}" if line is not None else str(path)
        raise InventoryError(f"inventory file {where} is not valid YAML: {getattr(err, 'problem', err)}.\n"
                             f"{fix}") from None
    try:
        inventory = Inventory.model_validate(data if data is not None else {})
    except ValidationError as err:
        raise InventoryError(f"inventory file {path}: {first_problem(err)}.\n{fix}") from None
    for name, count in (inventory.devices or {}).items():
        if name.lower() not in catalog.devices:
            raise InventoryError(f"inventory file {path}: unknown device type {name!r}."
                                 f"{did_you_mean(name.lower(), sorted(catalog.devices))}\n"
                                 f"To fix: use one of {', '.join(sorted(catalog.devices))}.")
        if count < 0:
            raise InventoryError(f"inventory file {path}: devices.{name} is {count}; counts must be >= 0.")
    for node in inventory.nodes:
        if node.device.lower() not in catalog.devices:
            raise InventoryError(f"inventory file {path}: node device type {node.device!r} is unknown."
                                 f"{did_you_mean(node.device.lower(), sorted(catalog.devices))}\n"
                                 f"To fix: use one of {', '.join(sorted(catalog.devices))}.")
    names = [r.name for r in inventory.remote]
    for r in inventory.remote:
        if names.count(r.name) > 1:
            raise InventoryError(f"inventory file {path}: two remote endpoints are named {r.name!r}.\n"
                                 "To fix: give each `remote:` entry its own name.")
        if r.model not in catalog.models and r.model.split("@")[0] not in catalog.models:
            raise InventoryError(f"inventory file {path}: remote endpoint {r.name!r} serves model {r.model!r}, which "
                                 f"the catalog does not know.{did_you_mean(r.model, sorted(catalog.models))}\n"
                                 "To fix: name the catalog model it serves (`plait catalog models`); the endpoint's "
                                 "own name for it goes in served_model.")
    for link in inventory.links:
        for name in link.between:
            if name != "*" and name.lower() not in catalog.devices:
                raise InventoryError(f"inventory file {path}: link names unknown device type {name!r}."
                                     f"{did_you_mean(name.lower(), sorted(catalog.devices))}")
    return inventory


ONE_TYPE_DEVICES = 64
"""Devices of a `--device` type the planner may use: enough for one per pool. `local`'s pools share this
machine's cores (the planner costs each with the whole machine; `plait run` pins each worker to its share)."""


def one_type(device: str) -> Inventory:
    """The inventory of `plait plan --device NAME` (and of `plait run` without --plan: `local`): that type only."""
    return Inventory(devices={device: ONE_TYPE_DEVICES})
