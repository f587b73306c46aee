"""The cost model: pure functions of (operator, device, batch, mode, tensor-parallel degree).

    time = max(compute, memory) + launches + fixed + comm

compute = matmul FLOPs / (peak[dtype] x compute_eff) + attention FLOPs / (peak[dtype] x attn_eff); memory =
bytes / (bandwidth x bw_eff) (the KV part at host-link bandwidth when offloaded). The elementwise kernels'
activation traffic (norms, rotary, activation, residual adds) runs in kernels of its own between the matmuls,
so it adds act_traffic / (bandwidth x act_bw_eff) to max(compute, memory) rather than hiding under it; launches = kernels x per-kernel cost. Graph mode pays `launch_graph_s` per kernel.
Eager mode also pays that device-side floor, and the host's `launch_eager_s` per kernel shows only where it
exceeds the device's work, because the host enqueues kernels asynchronously (a launch-bound op runs at host
speed). CPUs run kernels synchronously: launches are `launch_eager_s` each, never hidden. comm is the
all-reduce (tensor parallel) or all-to-all (expert parallel) traffic over the scale-up link.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from plait.planner.catalog import (
    DTYPE_BYTES,
    Catalog,
    CatalogError,
    DeviceSpec,
    Figure,
    ModelSpec,
    load_catalog,
)
from plait.planner.factors import ClassFactors, Factors, builtin_factors, factor_origins
from plait.planner.workload import HOST_OPS, OpSpec, Work, kv_cache_bytes, op_work

Mode = Literal["eager", "graph"]
Regime = Literal["launch-bound", "compute-bound", "bandwidth-bound", "host-bound"]
PriceBasis = Literal["cloud", "tco"]
MODES: tuple[str, ...] = ("eager", "graph")


class OpCost(BaseModel):
    """The cost of one execution of an op (the whole batch) on one replica."""

    model_config = ConfigDict(frozen=True)

    seconds: float = Field(description="latency of one execution, s")
    compute_s: float
    memory_s: float = Field(description="streaming weights and the KV cache, s")
    elementwise_s: float = Field(default=0.0, description="elementwise kernels' activation traffic, added, s")
    launch_s: float = Field(description="exposed launch overhead, s")
    fixed_s: float
    comm_s: float
    regime: Regime
    flops: float = Field(description="FLOPs per device")
    bytes_moved: float = Field(description="bytes moved per device")
    kernels: int
    dtype: str
    footprint_bytes: float = Field(description="memory needed per device (weights + KV + workspace)")
    capacity_bytes: float = Field(description="usable memory per device")
    fits: bool
    offloaded_kv: bool = Field(description="KV cache kept in host memory, read over the host link")
    kv_transfer_bytes: float = Field(description="prefill: KV bytes handed to decode (whole batch)")
    assumptions: tuple[str, ...] = Field(description="unsourced figures and assumed factors this estimate used")


class TcoParams(BaseModel):
    """Ownership cost: capex financed over `years` at `rate`, plus power at TDP (the paper's method)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    years: float = Field(default=4.0, gt=0, description="useful life, years")
    rate: float = Field(default=0.08, ge=0, description="annual financing rate")
    usd_per_kwh: float = Field(default=0.40, ge=0, description="electricity price, USD/kWh")


HOURS_PER_YEAR = 8760.0


def _note(device: DeviceSpec, key: str, fig: Figure) -> str:
    return f"{device.name} {key} = {fig.value:g} {fig.unit}: {fig.note or 'assumed'}"


def price_per_hour(device: DeviceSpec, basis: PriceBasis = "cloud", tco: TcoParams | None = None) -> float:
    """USD per device-hour. cloud: the catalog's on-demand price; tco: capex x CRF / 8760 + TDP x $/kWh.

    CRF (capital recovery factor) = r / (1 - (1 + r)^-n): the yearly payment that repays 1 USD in n years at r.
    """
    if basis == "cloud":
        price = device.cloud_usd_per_hour.value
    else:
        t = tco or TcoParams()
        crf = 1.0 / t.years if t.rate == 0 else t.rate / (1.0 - (1.0 + t.rate) ** -t.years)
        price = device.capex_usd.value * crf / HOURS_PER_YEAR + device.tdp_w.value / 1000.0 * t.usd_per_kwh
    return FREE_DEVICE_USD if price == 0 and device.inventory_only else price


FREE_DEVICE_USD = 1e-3
"""USD per hour of a device one has at no charge (plait calibrate's `local`): a tenth of a cent, which reports
round away, so that of two equally fast plans the one on fewer devices (fewer replicas, one unified LLM pool)
is cheaper. Smaller figures fall inside HiGHS's absolute MIP gap (1e-6), which then stops at any plan."""


def price_assumptions(device: DeviceSpec, basis: PriceBasis = "cloud") -> list[str]:
    keys = ["cloud_usd_per_hour"] if basis == "cloud" else ["capex_usd", "tdp_w"]
    return [_note(device, k, f) for k in keys if (f := device.figures()[k]).is_assumption]


def compute_dtype(device: DeviceSpec, dtype: str) -> tuple[str, list[str]]:
    """The dtype an op runs in on `device`: the model's if the device has a figure for it, else fp16, else fp32."""
    for cand in (dtype, "fp16" if dtype == "bf16" else dtype, "fp32"):
        if cand in device.flops:
            notes = [] if cand == dtype else [f"{device.name} has no {dtype} peak: computed in {cand}"]
            return cand, notes
    raise CatalogError(f"device {device.name!r} has no FLOP/s figure for {dtype} or fp32.\n"
                       "To fix: add flops.fp32 to its catalog entry.")


def _link(device: DeviceSpec, catalog: Catalog) -> tuple[float, float, str, list[str]]:
    """Bandwidth (B/s) and latency (s) of the link tensor-parallel collectives use."""
    notes = []
    sc = device.scaleup_gbps
    if sc is not None and sc.value > 0:
        lat = catalog.default("scaleup_latency_us")
        notes += [_note(device, "scaleup_gbps", sc)] if sc.is_assumption else []
        notes += [f"scale-up latency {lat.value:g} us: {lat.note}"]
        return sc.value * 1e9, lat.value * 1e-6, "scale-up", notes
    host = device.host_link_gbps
    if host is None:
        raise CatalogError(f"device {device.name!r} has no scale-up or host link for tensor parallelism.\n"
                           "To fix: use degree 1 on it.")
    notes += [_note(device, "host_link_gbps", host)] if host.is_assumption else []
    return host.value * 1e9, 1e-5, "pcie", notes


def time_work(work: Work, device: DeviceSpec, f: ClassFactors, mode: Mode = "graph", tp: int = 1,
              link: tuple[float, float] = (0.0, 0.0), offload_bw: float = 0.0) -> dict[str, float]:
    """Seconds for `work` on `device` with factors `f`: the formula of this module, term by term.

    `offload_bw` (B/s) > 0 moves the KV reads to the host link. `link` is (B/s, s latency) for collectives.
    """
    peak = device.flops[work.dtype].value * 1e12 if work.dtype in device.flops else device.flops["fp32"].value * 1e12
    attn_eff = f.attn_eff or f.compute_eff
    compute = ((work.flops - work.attn_flops) / f.compute_eff + work.attn_flops / attn_eff) / tp / peak
    bw = device.mem_bw_gbps.value * 1e9 * f.bw_eff
    # elementwise kernels run between the matmuls (unfused): their traffic adds to the time, at its own rate
    act = work.act_traffic if f.act_bw_eff is not None else 0.0
    elementwise = act / tp / (device.mem_bw_gbps.value * 1e9 * f.act_bw_eff) if f.act_bw_eff is not None else 0.0
    if offload_bw > 0:
        memory = (work.bytes - act - work.kv_read) / tp / bw + work.kv_read / tp / offload_bw
    else:
        memory = (work.bytes - act) / tp / bw
    kernels = work.kernels
    comm = 0.0
    if tp > 1:
        bw_link, lat = link
        ring = 2 * (tp - 1) / tp
        if work.moe_dispatch_bytes:   # expert parallel MLP: all-to-all out and back; attention all-reduce
            per_layer = (ring * work.collective_bytes + 2 * (tp - 1) / tp * work.moe_dispatch_bytes) / bw_link + 3 * lat
            kernels += 3 * work.layers
        else:                         # tensor parallel: all-reduce after attention and after the MLP
            per_layer = 2 * (ring * work.collective_bytes / bw_link + lat)
            kernels += 2 * work.layers
        comm = per_layer * work.layers
    busy = max(compute, memory) + elementwise
    if device.kind == "cpu":
        launch = kernels * f.launch_eager_s
    elif mode == "graph":
        launch = kernels * f.launch_graph_s
    else:
        floor = kernels * f.launch_graph_s
        launch = floor + max(0.0, kernels * f.launch_eager_s - (busy + floor + comm))
    fixed = f.fixed_s if work.fixed else 0.0
    return {"seconds": busy + launch + fixed + comm, "compute_s": compute, "memory_s": memory,
            "elementwise_s": elementwise, "launch_s": launch, "fixed_s": fixed, "comm_s": comm,
            "kernels": float(kernels)}


def regime_of(t: dict[str, float]) -> Regime:
    """launch-bound when exposed launches exceed the busier of compute and memory; else the busier one."""
    traffic = t["memory_s"] + t.get("elementwise_s", 0.0)   # both are bytes moved through device memory
    if t["launch_s"] > max(t["compute_s"], traffic):
        return "launch-bound"
    return "compute-bound" if t["compute_s"] >= traffic else "bandwidth-bound"


def _host_op(op: OpSpec, device: DeviceSpec, batch: int, catalog: Catalog, factors: Factors) -> OpCost:
    h = factors.host_ops
    notes = [f"host-op constants are assumptions: {h.note}"]
    if device.kind == "cpu" and device.cores is not None:
        cores = device.cores.value
    else:
        fig = catalog.default("host_cores")
        cores = fig.value
        notes.append(f"host cores of {device.name} = {fig.value:g}: {fig.note}")
    waves = math.ceil(batch / max(cores, 1.0))
    if op.op == "py_call":
        per = op.cpu_seconds or 0.0
    else:
        per_token = h.tokenize_s_per_token if op.op == "tokenize" else h.detokenize_s_per_token
        per = per_token * (op.tokens or 1)
    busy = per * waves
    seconds = busy + h.call_overhead_s
    return OpCost(seconds=seconds, compute_s=busy, memory_s=0.0, launch_s=0.0, fixed_s=h.call_overhead_s, comm_s=0.0,
                  regime="host-bound", flops=0.0, bytes_moved=0.0, kernels=0, dtype="none", footprint_bytes=0.0,
                  capacity_bytes=_capacity(device, catalog), fits=True, offloaded_kv=False, kv_transfer_bytes=0.0,
                  assumptions=tuple(notes))


def _capacity(device: DeviceSpec, catalog: Catalog) -> float:
    return device.mem_gb.value * 1e9 * catalog.default("usable_memory_fraction").value


def _resolve(device: str | DeviceSpec, catalog: Catalog) -> DeviceSpec:
    return device if isinstance(device, DeviceSpec) else catalog.device(device)


def _model(op: OpSpec, catalog: Catalog) -> ModelSpec | None:
    return catalog.model(op.model) if op.model else None


def estimate(op: OpSpec, device: str | DeviceSpec, batch: int = 1, mode: Mode = "graph", tp: int = 1, *,
             catalog: Catalog | None = None, factors: Factors | None = None) -> OpCost:
    """Cost of one execution of `op` over `batch` items on `tp` devices of kind `device`.

    Args:
        op: the operator (kind, model, tokens, ctx, ...).
        device: catalog name or DeviceSpec.
        batch: items per execution (sequences, queries, clips, calls).
        mode: eager or graph (CUDA graphs; ignored on CPUs, which run eager).
        tp: tensor-parallel degree (expert-parallel for MoE models): devices per replica.

    Returns:
        OpCost. `fits` is False when the weights do not fit `tp` devices; when only the KV cache does not fit,
        the KV cache is offloaded to host memory (`offloaded_kv`) and read over the host link.
    """
    cat = catalog or load_catalog()
    fac = factors or builtin_factors()
    dev = _resolve(device, cat)
    if batch < 1:
        raise CatalogError(f"batch must be at least 1, got {batch}.\nTo fix: pass batch >= 1.")
    if mode not in MODES:
        raise CatalogError(f"unknown mode {mode!r}.\nTo fix: use eager or graph.")
    if op.op in HOST_OPS:
        return _host_op(op, dev, batch, cat, fac)
    if tp < 1 or (tp > 1 and dev.kind == "cpu"):
        raise CatalogError(f"degree {tp} is not possible on {dev.name!r}: tensor parallelism needs accelerators "
                           "and degree >= 1.\nTo fix: use tp=1 on CPU devices.")
    model = _model(op, cat)
    if model is not None and model.decoder is not None and tp > model.decoder.heads:
        raise CatalogError(f"degree {tp} exceeds {model.name}'s {model.decoder.heads} attention heads.\n"
                           "To fix: use a smaller degree.")
    notes: list[str] = []
    dtype = model.dtype if model is not None else ("fp16" if dev.kind == "gpu" else "fp32")
    run_dtype, dnotes = compute_dtype(dev, dtype)
    notes += dnotes
    work = op_work(op, model, batch, elem_bytes=2 if run_dtype in ("bf16", "fp16") else 4)
    if run_dtype != work.dtype:   # weights upcast (e.g. bf16 model on an fp32-only CPU): bytes grow with the dtype
        scale = DTYPE_BYTES[run_dtype] / DTYPE_BYTES[work.dtype]
        work = Work(**{**work.__dict__, "dtype": run_dtype, "bytes": work.bytes * scale, "kv_read": work.kv_read * scale,
                       "weight_bytes": work.weight_bytes * scale, "kv_bytes": work.kv_bytes * scale,
                       "act_bytes": work.act_bytes * scale})
    f = fac.for_device(dev)
    notes += [f"{dev.kind} factor {a} is an assumption" for a in f.assumed]
    if dev.kind == "gpu" and dev.name != "h200":
        carried = [k for k, v in factor_origins(dev, fac).items() if v == "carried"]
        measured = "" if not dev.factors else f" ({', '.join(dev.factors)} measured on {dev.name}, cited)"
        notes.append(f"gpu efficiency factors {', '.join(carried)} fitted on h200 (torch, CUDA) carried to "
                     f"{dev.name} through its specs{measured}"
                     + ("; a different vendor's software stack" if dev.vendor != "nvidia" else ""))
    for key in (f"flops.{run_dtype}", "mem_bw_gbps", "mem_gb"):
        fig = dev.figures()[key]
        if fig.is_assumption:
            notes.append(_note(dev, key, fig))
    link = (0.0, 0.0)
    if tp > 1:
        bw, lat, _kind, lnotes = _link(dev, cat)
        link = (bw * f.link_eff, lat)
        notes += lnotes
    capacity = _capacity(dev, cat)
    need = (work.weight_bytes + work.kv_bytes + work.act_bytes) / tp
    fits, offload_bw = need <= capacity, 0.0
    if not fits and op.op in ("prefill", "decode") and (work.weight_bytes + work.act_bytes) / tp <= capacity \
            and dev.kind == "gpu" and dev.host_link_gbps is not None:
        offload_bw = dev.host_link_gbps.value * 1e9 * f.link_eff
        fits = True
        notes.append(f"KV cache offloaded to host memory, read at {dev.host_link_gbps.value:g} GB/s")
    t = time_work(work, dev, f, mode, tp, link, offload_bw)
    return OpCost(seconds=t["seconds"], compute_s=t["compute_s"], memory_s=t["memory_s"],
                  elementwise_s=t["elementwise_s"], launch_s=t["launch_s"],
                  fixed_s=t["fixed_s"], comm_s=t["comm_s"], regime=regime_of(t), flops=work.flops / tp,
                  bytes_moved=work.bytes / tp, kernels=int(t["kernels"]), dtype=run_dtype, footprint_bytes=need,
                  capacity_bytes=capacity, fits=fits, offloaded_kv=offload_bw > 0,
                  kv_transfer_bytes=work.kv_out if op.op == "prefill" else 0.0, assumptions=tuple(dict.fromkeys(notes)))


def seconds(op: OpSpec, device: str | DeviceSpec, batch: int = 1, mode: Mode = "graph", tp: int = 1, *,
            catalog: Catalog | None = None, factors: Factors | None = None) -> float:
    """Just the latency of estimate(...)."""
    return estimate(op, device, batch, mode, tp, catalog=catalog, factors=factors).seconds


def transfer_seconds(nbytes: float, device: str | DeviceSpec, link: Literal["host", "scaleup", "network"] = "host",
                     *, catalog: Catalog | None = None, factors: Factors | None = None) -> float:
    """Seconds to move `nbytes` over one of `device`'s links: bytes / (bandwidth x link_eff) + latency.

    host: PCIe to/from host memory (fitted efficiency and latency); scaleup: NVLink-class to a peer device
    (falls back to host when the device has none); network: between servers (catalog defaults).
    """
    cat = catalog or load_catalog()
    f = (factors or builtin_factors()).for_device(_resolve(device, cat))
    dev = _resolve(device, cat)
    if link == "network" or dev.kind == "cpu":
        if link != "network" and dev.kind == "cpu":
            return 0.0 if nbytes == 0 else nbytes / (dev.mem_bw_gbps.value * 1e9 * f.bw_eff)
        bw = cat.default("network_gbps").value * 1e9
        return nbytes / bw + cat.default("network_latency_us").value * 1e-6
    if link == "scaleup" and dev.scaleup_gbps is not None and dev.scaleup_gbps.value > 0:
        return nbytes / (dev.scaleup_gbps.value * 1e9 * f.link_eff) + cat.default("scaleup_latency_us").value * 1e-6
    assert dev.host_link_gbps is not None
    return nbytes / (dev.host_link_gbps.value * 1e9 * f.link_eff) + f.link_latency_s


def max_batch(op: OpSpec, device: str | DeviceSpec, mode: Mode = "graph", tp: int = 1, *, limit: int = 4096,
              allow_offload: bool = False, catalog: Catalog | None = None, factors: Factors | None = None) -> int:
    """Largest batch (<= limit) whose footprint fits `tp` devices; 0 if even batch 1 does not fit."""
    def ok(b: int) -> bool:
        c = estimate(op, device, b, mode, tp, catalog=catalog, factors=factors)
        return c.fits and (allow_offload or not c.offloaded_kv)
    if not ok(1):
        return 0
    lo, hi = 1, limit
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if ok(mid) else (lo, mid - 1)
    return lo


def min_degree(op: OpSpec, device: str | DeviceSpec, batch: int = 1, *, degrees: tuple[int, ...] = (1, 2, 4, 8),
               catalog: Catalog | None = None, factors: Factors | None = None) -> int | None:
    """Smallest tensor-parallel degree at which `op` fits without offload, or None."""
    for t in degrees:
        try:
            c = estimate(op, device, batch, "graph", t, catalog=catalog, factors=factors)
        except CatalogError:
            continue
        if c.fits and not c.offloaded_kv:
            return t
    return None


__all__ = ["MODES", "Mode", "OpCost", "PriceBasis", "Regime", "TcoParams", "compute_dtype", "estimate",
           "kv_cache_bytes", "max_batch", "min_degree", "price_assumptions", "price_per_hour", "regime_of",
           "seconds", "time_work", "transfer_seconds"]
