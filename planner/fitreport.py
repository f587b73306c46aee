"""Render the fit: fitted factors and the residual of every calibration row, grouped by regime."""

from __future__ import annotations

import math

from plait.planner.calibration import CalRow
from plait.planner.catalog import Catalog, DeviceSpec, load_catalog
from plait.planner.factors import ClassFactors
from plait.planner.fit import Residual, fit_cpu, fit_gpu, median_abs, predict

REGIMES = ("launch-bound", "compute-bound", "bandwidth-bound")
UNITS = {"compute_eff": "of dense peak FLOP/s", "bw_eff": "of peak memory bandwidth",
         "launch_eager_s": "s per kernel, eager (host)", "launch_graph_s": "s per kernel, graph (device floor)",
         "fixed_s": "s per op call", "link_eff": "of host-link bandwidth", "link_latency_s": "s per host copy"}


def factor_lines(title: str, f: ClassFactors) -> list[str]:
    out = [f"{title}  ({f.fitted_on})"]
    for key, unit in UNITS.items():
        tag = "  [assumption]" if key in f.assumed else ""
        out.append(f"  {key:<15} {getattr(f, key):>10.4g}  {unit}{tag}")
    return out


def link_residuals(rows: list[CalRow], device: DeviceSpec, f: ClassFactors) -> list[tuple[CalRow, float]]:
    assert device.host_link_gbps is not None
    bw = device.host_link_gbps.value * 1e9 * f.link_eff
    return [(r, f.link_latency_s + r.work.bytes / bw) for r in rows if r.split == "link"]


def residual_lines(res: list[Residual]) -> list[str]:
    out: list[str] = []
    for regime in REGIMES:
        group = [r for r in res if r.regime == regime]
        if not group:
            continue
        out.append(f"  -- {regime} ({len(group)} rows, median |error| {median_abs([r.error for r in group]):.1%}) --")
        out.append(f"  {'split':<8} {'row':<44} {'measured ms':>12} {'predicted ms':>13} {'error':>8}")
        for r in group:
            out.append(f"  {r.row.split:<8} {r.row.label:<44} {r.row.seconds * 1e3:>12.4f} {r.predicted * 1e3:>13.4f} "
                       f"{r.error:>+8.1%}")
    return out


def summary(res: list[Residual], split: str) -> dict[str, float]:
    """Median |error| over rows of `split`, and the max |error| per regime."""
    rows = [r for r in res if r.row.split == split]
    out = {"rows": float(len(rows)), "median_abs_error": median_abs([r.error for r in rows])}
    for regime in REGIMES:
        errs = [abs(r.error) for r in rows if r.regime == regime]
        out[f"max_abs_error[{regime}]"] = max(errs) if errs else math.nan
    return out


def fit_report(catalog: Catalog | None = None) -> str:
    """The whole report `plait cost --fit-report` prints (deterministic for fixed calibration files)."""
    cat = catalog or load_catalog()
    gpu, rows = fit_gpu(cat)
    h200 = cat.device("h200")
    res = predict([r for r in rows if r.split != "link"], h200, gpu)
    lines = ["plait cost model fit", "", *factor_lines("GPU class, fitted on the h200 calibration file", gpu), "",
             "Residuals, h200 (fit: used to fit; predict: llama-3.1-8b, held out; other: encoders and search, "
             "not fitted):", *residual_lines(res), "", "  -- host link (pinned copies) --"]
    for r, p in link_residuals(rows, h200, gpu):
        lines.append(f"  {r.split:<8} {r.label:<44} {r.seconds * 1e3:>12.4f} {p * 1e3:>13.4f} {p / r.seconds - 1:>+8.1%}")
    for split in ("fit", "predict", "other"):
        s = summary(res, split)
        per = ", ".join(f"{k[14:-1]} {v:.1%}" for k, v in s.items() if k.startswith("max") and not math.isnan(v))
        lines.append(f"  {split:<8} {int(s['rows'])} rows: median |error| {s['median_abs_error']:.1%}; max |error| {per}")
    cpu, dev, crows = fit_cpu()
    cres = predict(crows, dev, cpu)
    lines += ["", *factor_lines("CPU class, fitted on this machine's timings (planner/data/cpu_timings.jsonl)", cpu),
              f"  local peak {dev.flops['fp32'].value * 1e3:.1f} GFLOP/s fp32 ({dev.flops['fp32'].note})",
              "", "Residuals, this machine's CPU:", *residual_lines(cres),
              f"  fit      {len(cres)} rows: median |error| {median_abs([r.error for r in cres]):.1%}"]
    return "\n".join(lines) + "\n"
