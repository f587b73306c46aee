"""How a catalog device is asked for on Kubernetes: the node label that picks its nodes, and the extended
resource its device plugin advertises. The one table of these; `plait catalog ls` names the devices.

GPU product labels are what NVIDIA's GPU Feature Discovery writes (`nvidia.com/gpu.product`: the product name
as `nvidia-smi` prints it, spaces as dashes) and AMD's node labeller (`amd.com/gpu.product-name`). A cluster whose
nodes carry other values: set `nodeSelector` on the pool in the AgentDeployment after `plait submit`, or add
the device to DEVICE_NODES.
"""

from __future__ import annotations

from dataclasses import dataclass

from plait.sdk.errors import PlaitError


@dataclass(frozen=True)
class DeviceNodes:
    """One catalog device on Kubernetes: the node labels its nodes carry, the resource one device is."""

    labels: dict[str, str]
    resource: str | None      # the device plugin's extended resource (one per device); None: a CPU server


_NVIDIA = "nvidia.com/gpu"
_GPU_PRODUCT = "nvidia.com/gpu.product"

DEVICE_NODES: dict[str, DeviceNodes] = {
    # catalog name: node labels, extended resource
    "h200": DeviceNodes({_GPU_PRODUCT: "NVIDIA-H200"}, _NVIDIA),
    "h100-sxm": DeviceNodes({_GPU_PRODUCT: "NVIDIA-H100-80GB-HBM3"}, _NVIDIA),
    "h100-pcie": DeviceNodes({_GPU_PRODUCT: "NVIDIA-H100-PCIe"}, _NVIDIA),
    "a100-80gb": DeviceNodes({_GPU_PRODUCT: "NVIDIA-A100-SXM4-80GB"}, _NVIDIA),
    "a10g": DeviceNodes({_GPU_PRODUCT: "NVIDIA-A10G"}, _NVIDIA),
    "l4": DeviceNodes({_GPU_PRODUCT: "NVIDIA-L4"}, _NVIDIA),
    "l40s": DeviceNodes({_GPU_PRODUCT: "NVIDIA-L40S"}, _NVIDIA),
    "t4": DeviceNodes({_GPU_PRODUCT: "Tesla-T4"}, _NVIDIA),
    "b200": DeviceNodes({_GPU_PRODUCT: "NVIDIA-B200"}, _NVIDIA),
    "a40": DeviceNodes({_GPU_PRODUCT: "NVIDIA-A40"}, _NVIDIA),
    "mi300x": DeviceNodes({"amd.com/gpu.product-name": "AMD_Instinct_MI300X_OAM"}, "amd.com/gpu"),
    # Habana's device plugin labels no product: the resource alone picks Gaudi nodes
    "gaudi3": DeviceNodes({}, "habana.ai/gaudi"),
    # CPU servers: the architecture picks the node; cores are requested as cpu
    "spr-32": DeviceNodes({"kubernetes.io/arch": "amd64"}, None),
    "genoa-64": DeviceNodes({"kubernetes.io/arch": "amd64"}, None),
    "graviton3-64": DeviceNodes({"kubernetes.io/arch": "arm64"}, None),
    # `plait calibrate --cpu`'s machine: CPU pods on any node
    "local": DeviceNodes({}, None),
}

MEMORY_PER_CORE_GI = 2   # memory requested per CPU core of a tool or CPU pool (an assumption, not measured)


class UnknownDeviceError(PlaitError):
    """A plan names a device with no entry in DEVICE_NODES: no node selector or resource to ask for."""


def device_nodes(device: str, pool: str) -> DeviceNodes:
    """The Kubernetes view of `device` (a catalog name), or UnknownDeviceError naming `pool` and the fix."""
    found = DEVICE_NODES.get(device)
    if found is None:
        known = ", ".join(sorted(DEVICE_NODES))
        raise UnknownDeviceError(
            f"pool {pool!r} runs on device {device!r}, which has no node label or device resource for "
            f"Kubernetes\n  To fix: plan for one of {known}, or add {device!r} to DEVICE_NODES in "
            "cluster/devices.py (its nvidia.com/gpu.product value and resource).")
    return found
