"""Render the fit: fitted factors, signed residuals per regime and model size, every row's residual, and which
factors each device type measured and which it carries from the class fit."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from plait.planner.calibration import CalRow, host_gaps
from plait.planner.catalog import Catalog, DeviceSpec, load_catalog
from plait.planner.factors import FACTOR_NAMES, ClassFactors, Factors, factor_origins
from plait.planner.fit import Residual, fit_cpu, fit_gpu, median_abs, predict
from plait.planner.workload import stack_params

REGIMES = ("launch-bound", "compute-bound", "bandwidth-bound")
UNITS = {"compute_eff": "of dense peak FLOP/s (matmuls)", "bw_eff": "of peak memory bandwidth",
         "attn_eff": "of dense peak FLOP/s (attention)", "act_bw_eff": "of peak bandwidth (elementwise kernels)",
         "launch_eager_s": "s per kernel, eager (host)", "launch_graph_s": "s per kernel, graph (device floor)",
         "fixed_s": "s per op call", "link_eff": "of host-link bandwidth", "link_latency_s": "s per host copy"}


def factor_lines(title: str, f: ClassFactors) -> list[str]:
    out = [f"{title}  ({f.fitted_on})"]
    for key, unit in UNITS.items():
        if getattr(f, key) is None:   # a class without the term (its traffic streams with the weights)
            continue
        tag = "  [assumption]" if key in f.assumed else ""
        out.append(f"  {key:<15} {getattr(f, key):>10.4g}  {unit}{tag}")
    return out


BIAS_BOUND = 0.05   # no regime of the fitted rows may be biased by more than this (signed median)


@dataclass(frozen=True)
class BiasGroup:
    """Signed residuals of one (rows, regime) group: the median says whether the model is fast or slow there."""

    rows: str            # e.g. "llama-3.2-1b (1.50 B params, fit)"
    split: str
    regime: str
    n: int
    signed_median: float
    median_abs: float

    @property
    def bounded(self) -> bool:
        """Only the fitted rows are held to BIAS_BOUND; held-out and reported rows are shown as they are."""
        return self.split == "fit"


def _group_name(r: Residual, catalog: Catalog) -> str:
    if r.row.split == "micro":
        return "micro-benchmarks (gemm, copy, launch; GEMMs of 2048+ rows fix compute_eff)"
    if r.row.split == "other":
        return "encoders and search (not fitted)"
    op = r.row.op
    model = catalog.model(op.model) if op is not None and op.model else None
    if model is None or model.decoder is None:
        return r.row.split
    params = stack_params(model.decoder, "decoder")["total"] / 1e9
    role = "fit" if r.row.split == "fit" else "held out"
    return f"{model.name} ({params:.2f} B params, {role})"


def bias_groups(res: list[Residual], catalog: Catalog) -> list[BiasGroup]:
    """Signed median residual per (model size or row kind, regime), in a fixed order."""
    order = {"fit": 0, "predict": 1, "micro": 2, "other": 3}
    keys: dict[tuple[int, str, str, str], list[float]] = {}
    for r in res:
        name = _group_name(r, catalog)
        keys.setdefault((order.get(r.row.split, 9), name, r.row.split, r.regime), []).append(r.error)
    out = []
    for (_, name, split, regime), errs in sorted(keys.items(), key=lambda kv: (kv[0][0], kv[0][1],
                                                                            REGIMES.index(kv[0][3]))):
        out.append(BiasGroup(name, split, regime, len(errs), float(np.median(errs)), median_abs(errs)))
    return out


def bias_lines(groups: list[BiasGroup]) -> list[str]:
    out = [f"  {'rows':<52} {'regime':<16} {'n':>3} {'signed median':>14} {'median |error|':>15}"]
    for g in groups:
        mark = "  over the bound" if g.bounded and abs(g.signed_median) > BIAS_BOUND else ""
        out.append(f"  {g.rows:<52} {g.regime:<16} {g.n:>3} {g.signed_median:>+14.1%} {g.median_abs:>15.1%}{mark}")
    worst = max((abs(g.signed_median) for g in groups if g.bounded), default=0.0)
    verdict = "met" if worst <= BIAS_BOUND else "NOT met"
    out.append(f"  bound: every regime of the fitted rows within {BIAS_BOUND:.0%} (signed median); "
               f"worst {worst:.1%}: {verdict}")
    return out


def device_factor_lines(catalog: Catalog, factors: Factors | None = None) -> list[str]:
    """Per GPU type: each factor's value and whether it is measured (cited), fitted (h200) or carried."""
    head = "".join(f" {n:>16}" for n in FACTOR_NAMES)
    out = [f"  {'device':<12}{head}"]
    sources: list[str] = []
    for name in sorted(catalog.devices):
        dev = catalog.devices[name]
        if dev.kind != "gpu":
            continue
        f = (factors or _builtin()).for_device(dev)
        origin = factor_origins(dev, factors)
        cells = "".join(f" {getattr(f, k):>8.4g} {origin[k]:<7}" for k in FACTOR_NAMES)
        out.append(f"  {name:<12}{cells}".rstrip())
        sources += [f"  {name} {k}: {fig.source} <{fig.url}>" for k, fig in sorted(dev.factors.items())]
    return out + (["  measured factors, with their sources:", *sources] if sources else [])


def _builtin() -> Factors:
    from plait.planner.factors import builtin_factors

    return builtin_factors()


def unknown_lines() -> list[str]:
    gaps = [g for _, g in host_gaps()]
    return [f"  engine scheduling gaps: wall minus CUDA-event time per eager decode step, median "
            f"{float(np.median(gaps)):+.1%} over {len(gaps)} rows (from {min(gaps):+.1%} to {max(gaps):+.1%})",
            "  sampling: 0 rows (the calibration model stops at the last position's logits)",
            "  tokenizer time: 0 rows (tokenize/detokenize use the assumed host_ops constants of factors.yaml)"]


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
             "Factors per GPU type (measured: its own, cited in devices.yaml; fitted: the h200 fit; carried: the "
             "h200 fit through the spec sheet):", *device_factor_lines(cat, _builtin().model_copy(update={"gpu": gpu})),
             "",
             "Signed residuals, h200, (predicted - measured) / measured; negative: the model is fast:",
             *bias_lines(bias_groups(res, cat)), "",
             "Residuals, h200 (fit: used to fit; predict: llama-3.1-8b, held out; micro: gemm, copy, launch, "
             "the GEMMs of 2048+ rows fixing compute_eff; other: encoders and search, not fitted):", *residual_lines(res), "",
             "  -- host link (pinned copies) --"]
    for r, p in link_residuals(rows, h200, gpu):
        lines.append(f"  {r.split:<8} {r.label:<44} {r.seconds * 1e3:>12.4f} {p * 1e3:>13.4f} {p / r.seconds - 1:>+8.1%}")
    for split in ("fit", "predict", "micro", "other"):
        s = summary(res, split)
        per = ", ".join(f"{k[14:-1]} {v:.1%}" for k, v in s.items() if k.startswith("max") and not math.isnan(v))
        lines.append(f"  {split:<8} {int(s['rows'])} rows: median |error| {s['median_abs_error']:.1%}; max |error| {per}")
    lines += ["", "What the model cannot know (no term in the formula), as far as the calibration data shows it:",
              *unknown_lines()]
    cpu, dev, crows = fit_cpu()
    cres = predict(crows, dev, cpu)
    lines += ["", *factor_lines("CPU class, fitted on this machine's timings (planner/data/cpu_timings.jsonl)", cpu),
              f"  local peak {dev.flops['fp32'].value * 1e3:.1f} GFLOP/s fp32 ({dev.flops['fp32'].note})",
              "", "Residuals, this machine's CPU:", *residual_lines(cres),
              f"  fit      {len(cres)} rows: median |error| {median_abs([r.error for r in cres]):.1%}"]
    return "\n".join(lines) + "\n"
