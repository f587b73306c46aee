"""Efficiency factors per device class (fitted, see planner/fit.py) and host-op constants, from factors.yaml."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

DeviceClass = Literal["gpu", "cpu"]


class ClassFactors(BaseModel):
    """A handful of numbers per device class; carried to other devices of the class through their specs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    compute_eff: float = Field(gt=0, le=1, description="fraction of dense peak FLOP/s reached by large matmuls")
    bw_eff: float = Field(gt=0, le=1, description="fraction of peak memory bandwidth reached streaming weights/KV")
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


@lru_cache(maxsize=1)
def builtin_factors() -> Factors:
    """The checked-in fit (planner/catalog/factors.yaml, written by `python -m plait.planner.fit --write`)."""
    text = resources.files("plait.planner.catalog").joinpath("factors.yaml").read_text()
    return Factors.model_validate(yaml.safe_load(text))
