"""Efficiency factors per device class (fitted, see planner/fit.py) and host-op constants, from factors.yaml.

A device type's catalog entry may carry its own measured factors (`factors:` in devices.yaml, each cited);
`for_device` lays them over the class fit, and `factor_origins` says which of a device's factors are measured
and which are carried from the class.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from plait.planner.catalog import DeviceSpec

DeviceClass = Literal["gpu", "cpu"]


class ClassFactors(BaseModel):
    """A handful of numbers per device class; carried to other devices of the class through their specs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    compute_eff: float = Field(gt=0, le=1, description="fraction of dense peak FLOP/s reached by large matmuls")
    bw_eff: float = Field(gt=0, le=1, description="fraction of peak memory bandwidth reached streaming weights/KV")
    attn_eff: float | None = Field(default=None, gt=0, le=1, description=(
        "fraction of dense peak FLOP/s attention reaches; None: compute_eff (one efficiency for all FLOPs)"))
    act_bw_eff: float | None = Field(default=None, gt=0, le=1, description=(
        "fraction of peak bandwidth the elementwise kernels' activation traffic reaches, in kernels of its own "
        "(added to, not hidden under, the matmuls); None: that traffic streams with the weights at bw_eff"))
    launch_eager_s: float = Field(ge=0, description="host time per kernel launch in eager mode, s")
    launch_graph_s: float = Field(ge=0, description="device time per kernel (CUDA-graph node; also the floor "
                                                    "per kernel in eager mode), s")
    fixed_s: float = Field(ge=0, description="fixed cost per op call, s")
    link_eff: float = Field(default=0.85, gt=0, le=1, description="fraction of host-link bandwidth reached by copies")
    link_latency_s: float = Field(default=1e-5, ge=0, description="latency of one host-link copy, s")
    fitted_on: str = Field(default="", description="rows the factors were fitted on")
    assumed: list[str] = Field(default_factory=list, description="factors of this class that are assumptions")


class HostOps(BaseModel):
    """Host-CPU costs of tokenize, detokenize and py_call (assumptions: not measured here)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tokenize_s_per_token: float = Field(description="one core, s per token (fast BPE tokenizer)")
    detokenize_s_per_token: float = Field(description="one core, s per token")
    call_overhead_s: float = Field(description="fixed cost per host-op call (dispatch), s")
    note: str = ""


class Factors(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    gpu: ClassFactors
    cpu: ClassFactors
    host_ops: HostOps

    def for_kind(self, kind: str) -> ClassFactors:
        return self.gpu if kind == "gpu" else self.cpu

    def for_device(self, device: DeviceSpec) -> ClassFactors:
        """The class factors of `device.kind` with the device's own measured factors laid over them."""
        base = self.for_kind(device.kind)
        if not device.factors:
            return base
        return base.model_copy(update={k: fig.value for k, fig in device.factors.items()})


FACTOR_NAMES = ("compute_eff", "bw_eff", "attn_eff", "act_bw_eff", "launch_eager_s", "launch_graph_s", "fixed_s",
                "link_eff", "link_latency_s")


def factor_origins(device: DeviceSpec, factors: Factors | None = None) -> dict[str, str]:
    """factor name -> "measured" (the device's own, cited in devices.yaml), "fitted" (the class fit on the
    h200 calibration file, for the h200 itself) or "carried" (the class fit, carried through the spec sheet)."""
    f = (factors or builtin_factors()).for_kind(device.kind)
    home = device.kind == "gpu" and device.name == "h200"
    out: dict[str, str] = {}
    measured: set[str] = set(device.factors)
    for name in FACTOR_NAMES:
        if name in measured:
            out[name] = "measured"
        elif name in f.assumed:
            out[name] = "assumed"
        else:
            out[name] = "fitted" if home else "carried"
    return out


@lru_cache(maxsize=1)
def builtin_factors() -> Factors:
    """The checked-in fit (planner/catalog/factors.yaml, written by `python -m plait.planner.fit --write`)."""
    text = resources.files("plait.planner.catalog").joinpath("factors.yaml").read_text()
    return Factors.model_validate(yaml.safe_load(text))
