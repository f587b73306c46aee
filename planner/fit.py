"""Fit the per-class efficiency factors to calibration rows (scipy least squares on log time).

GPU: the llama-3.2-1b prefill and decode rows of the H200 file (whole-model rows: what the planner costs); the
llama-3.1-8b rows are held out and predicted; the micro-benchmarks (gemm, copy, launch) are reported, not fitted. CPU: this machine's timings (bench/cpu_timings.py). Run
`python -m plait.planner.fit --write` to refresh planner/catalog/factors.yaml.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from plait.planner.calibration import GPU_FILE, CalRow, cpu_rows, gpu_rows
from plait.planner.catalog import Catalog, DeviceSpec, load_catalog
from plait.planner.costmodel import regime_of, time_work
from plait.planner.factors import ClassFactors, Factors, HostOps, builtin_factors

FITTED = ("attn_eff", "act_bw_eff", "bw_eff", "launch_eager_s", "launch_graph_s", "fixed_s")
"""Fitted on the llama-3.2-1b rows; compute_eff comes from the prefill-sized GEMMs (GEMM_ROWS) first."""
BOUNDS = {"compute_eff": (0.05, 1.0), "bw_eff": (0.05, 1.0), "attn_eff": (0.05, 1.0), "act_bw_eff": (0.01, 1.0),
          "launch_eager_s": (1e-7, 1e-3), "launch_graph_s": (1e-8, 1e-4), "fixed_s": (1e-7, 1e-2)}
GEMM_ROWS = 2048
"""The micro GEMMs of at least this many rows (prefill-sized: the shortest compute-bound prompt) fix compute_eff:
a model's matmuls run at an isolated GEMM's rate, and its attention and elementwise kernels, not a lower
matmul efficiency, make up the rest. One efficiency for all FLOPs, fitted on the 1B rows, made the 8B
prefill 17% slow (its matmuls are a larger share of its time than the 1B's)."""
CPU_BW_EFF = 1.0   # this machine's peak bandwidth is unknown (a VM): its measured copy rate stands in for it
HOST_OPS = HostOps(tokenize_s_per_token=1.0e-6, detokenize_s_per_token=3.0e-7, call_overhead_s=5.0e-5,
                   note="fast BPE ~1 M tokens/s/core, detokenize ~3 M tokens/s/core, 50 us per call; not measured")


@dataclass(frozen=True)
class Residual:
    row: CalRow
    predicted: float
    regime: str

    @property
    def error(self) -> float:
        """Signed relative error, (predicted - measured) / measured."""
        return self.predicted / self.row.seconds - 1.0


def predict(rows: list[CalRow], device: DeviceSpec, f: ClassFactors) -> list[Residual]:
    out = []
    for r in rows:
        t = time_work(r.work, device, f, r.mode)
        out.append(Residual(r, t["seconds"], regime_of(t)))
    return out


def _fit(rows: list[CalRow], device: DeviceSpec, base: ClassFactors, names: tuple[str, ...]) -> ClassFactors:
    from scipy.optimize import least_squares  # lazy: scipy is only needed to fit

    lo = np.log([BOUNDS[n][0] for n in names])
    hi = np.log([BOUNDS[n][1] for n in names])
    x0 = np.clip(np.log([getattr(base, n) for n in names]), lo + 1e-9, hi - 1e-9)
    meas = np.log([r.seconds for r in rows])

    def resid(x: np.ndarray) -> np.ndarray:
        f = base.model_copy(update=dict(zip(names, np.exp(x).tolist(), strict=True)))
        return np.log([time_work(r.work, device, f, r.mode)["seconds"] for r in rows]) - meas

    sol = least_squares(resid, x0, bounds=(lo, hi), method="trf", x_scale="jac")
    return base.model_copy(update={n: float(f"{v:.4g}") for n, v in zip(names, np.exp(sol.x), strict=True)})


def _fit_link(rows: list[CalRow], device: DeviceSpec) -> tuple[float, float]:
    """Host-link efficiency and latency from pinned copies: t = latency + bytes / (link x eff)."""
    bw = device.host_link_gbps.value * 1e9 if device.host_link_gbps else 1.0
    a = np.array([[1.0, r.work.bytes / bw] for r in rows])
    t = np.array([r.seconds for r in rows])
    w = 1.0 / t                                   # relative error weighting
    (lat, inv_eff), *_ = np.linalg.lstsq(a * w[:, None], t * w, rcond=None)
    return float(f"{min(1.0, 1.0 / inv_eff):.4g}"), float(f"{max(lat, 0.0):.4g}")


def fit_gpu(catalog: Catalog | None = None) -> tuple[ClassFactors, list[CalRow]]:
    cat = catalog or load_catalog()
    rows = gpu_rows(cat)
    dev = cat.device("h200")
    fit_rows = [r for r in rows if r.split == "fit"]
    gemms = [r for r in rows if r.section == "gemm" and r.work.flops >= 2.0 * GEMM_ROWS * 4096 * 4096]
    base = builtin_factors().gpu.model_copy(update={"attn_eff": builtin_factors().gpu.attn_eff or 0.5,
                                                    "act_bw_eff": builtin_factors().gpu.act_bw_eff or 0.5})
    base = _fit(gemms, dev, base, ("compute_eff",))
    f = _fit(fit_rows, dev, base, FITTED)
    eff, lat = _fit_link([r for r in rows if r.split == "link"], dev)
    f = f.model_copy(update={"link_eff": eff, "link_latency_s": lat, "assumed": [],
                             "fitted_on": f"planner/data/calibration/{GPU_FILE}: {len(fit_rows)} h200 rows "
                                          f"(llama-3.2-1b prefill/decode), its {len(gemms)} GEMMs of "
                                          f"{GEMM_ROWS}+ rows (compute_eff) and its pinned host copies"})
    return f, rows


def fit_cpu() -> tuple[ClassFactors, DeviceSpec, list[CalRow]]:
    dev, rows = cpu_rows(CPU_BW_EFF)
    base = builtin_factors().cpu.model_copy(update={"bw_eff": CPU_BW_EFF})
    names = ("compute_eff", "bw_eff", "launch_eager_s", "fixed_s")
    f = _fit(rows, dev, base, names)
    f = f.model_copy(update={"launch_graph_s": f.launch_eager_s, "assumed": ["link_eff", "link_latency_s"],
                             "fitted_on": f"planner/data/cpu_timings.jsonl: {len(rows)} rows (gemm, launch, "
                                          f"tiny-llama prefill/decode) timed on {dev.label}, "
                                          f"{int(dev.cores.value if dev.cores else 0)} cores"})
    return f, dev, rows


def fit_all(catalog: Catalog | None = None) -> Factors:
    gpu, _ = fit_gpu(catalog)
    cpu, _, _ = fit_cpu()
    return Factors(gpu=gpu, cpu=cpu, host_ops=HOST_OPS)


def median_abs(errors: list[float]) -> float:
    return float(np.median(np.abs(errors))) if errors else math.nan


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--write", action="store_true", help="write planner/catalog/factors.yaml")
    args = ap.parse_args()
    fac = fit_all()
    text = ("# Fitted by `python -m plait.planner.fit --write` (planner/fit.py); do not edit by hand.\n"
            + yaml.safe_dump(fac.model_dump(), sort_keys=False, width=120))
    if args.write:
        path = Path(__file__).resolve().parent / "catalog" / "factors.yaml"
        path.write_text(text)
        print(f"wrote {path}")
    else:
        print(text)


if __name__ == "__main__":
    main()
