"""The link between two pools, by the device types they run on: the one model the planner and the simulator share.

A type's name may carry `/host` (the host CPUs of that type's servers). Two pools of one GPU type talk over
its scale-up link (NVLink class) or, without one, PCIe peer to peer; of one CPU or host type, over the
network; GPUs of different vendors stage through host memory (PCIe out, the network, PCIe in, one after
the other); any other pair (a host CPU and a GPU, a CPU server and a GPU) crosses the network. Figures
are the catalog's (devices.yaml defaults and each device's links).
"""

from __future__ import annotations

from plait.planner.catalog import Catalog, CatalogError, DeviceSpec

HOST_LINK_LATENCY_S = 1e-5     # PCIe peer to peer between two GPUs of a type without a scale-up link
VENDOR_HOP_LATENCY_S = 2e-5    # the two PCIe hops through host memory across vendors


def _gpu(name: str, catalog: Catalog) -> DeviceSpec | None:
    try:
        dev = catalog.device(name)
    except CatalogError:
        return None   # a host type (TYPE/host) is CPU cores
    return dev if dev.kind == "gpu" else None


def network(catalog: Catalog) -> tuple[float, float]:
    """(GB/s, latency s) of the network between servers."""
    return catalog.default("network_gbps").value, catalog.default("network_latency_us").value * 1e-6


def link_between(a: str, b: str, catalog: Catalog) -> tuple[float, float]:
    """(GB/s, latency s) of the link between a pool on type `a` and another pool on type `b`."""
    net, net_lat = network(catalog)
    da, db = _gpu(a, catalog), _gpu(b, catalog)
    if a == b:
        if da is None:
            return net, net_lat
        up = da.scaleup_gbps.value if da.scaleup_gbps is not None and da.scaleup_gbps.value > 0 else 0.0
        if up:
            return up, catalog.default("scaleup_latency_us").value * 1e-6
        return (da.host_link_gbps.value if da.host_link_gbps is not None else net), HOST_LINK_LATENCY_S
    if da is not None and db is not None and da.vendor != db.vendor:
        host = [x.host_link_gbps.value for x in (da, db) if x.host_link_gbps is not None]
        return 1.0 / (1.0 / net + sum(1.0 / h for h in host)), net_lat + VENDOR_HOP_LATENCY_S
    return net, net_lat
