"""Calibration rows: measured timings (../shared/calibration, and this machine's CPU) as cost-model inputs.

Names are mapped to plait's: device "gpu" is the h200, mode "cudagraph" is "graph", encoders "minilm-l6-384"
and "bert-base-768" are minilm-l6 and bge-base. Micro-benchmarks (gemm, copy, launch) become Work directly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

from plait.planner.catalog import Catalog, DeviceSpec, Figure, ModelSpec, Source, StackSpec, load_catalog
from plait.planner.factors import ClassFactors, builtin_factors
from plait.planner.workload import OpSpec, Work, decode_work, op_work, prefill_work

DEVICE_NAMES = {"gpu": "h200"}
MODE_NAMES = {"cudagraph": "graph", "eager": "eager"}   # the calibration file's mode names -> plait's
MODEL_NAMES = {"minilm-l6-384": "minilm-l6", "bert-base-768": "bge-base"}
GPU_FILE = "h200-torch-eager.jsonl"
CPU_FILE = "cpu_timings.jsonl"

Split = Literal["fit", "predict", "micro", "other", "link"]


@dataclass(frozen=True)
class CalRow:
    """One measured timing with what the cost model needs to predict it."""

    label: str                 # e.g. "llm_decode llama-3.1-8b b=32 ctx=1024 graph"
    section: str
    split: Split               # fit: used to fit factors; predict: held out; micro: micro-benchmarks (gemm, copy,
                               # launch; reported only); other: encoders and search (reported only); link: copies
    device: str                # catalog device name, or "local-cpu"
    mode: Literal["eager", "graph"]
    seconds: float             # measured
    work: Work                 # what the op does
    op: OpSpec | None = None   # the catalog op, when there is one
    batch: int = 1


def read_jsonl(package: str, name: str) -> list[dict[str, Any]]:
    text = resources.files(package).joinpath(name).read_text()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def gemm_work(m: int, n: int, k: int, dtype: str = "bf16", elem: int = 2, fixed: bool = False) -> Work:
    """One GEMM timed alone: on a GPU no op-call overhead of a model forward (`fixed`), only its launch."""
    return Work(flops=2.0 * m * n * k, bytes=float(elem * (m * k + k * n + m * n)), kernels=1, dtype=dtype,
                fixed=fixed)


def gpu_rows(catalog: Catalog | None = None) -> list[CalRow]:
    """The H200 calibration file as CalRows (fit: llama-3.2-1b; predict: llama-3.1-8b; micro: gemm, copy, launch).

    The factors are fitted on whole-model rows only: an isolated GEMM or copy reaches a higher fraction of peak
    than a model's mix of kernels, and fitting both with one set of factors biased the 1B decode by -22%.
    """
    cat = catalog or load_catalog()
    out: list[CalRow] = []
    for r in read_jsonl("plait.planner.data.calibration", GPU_FILE):
        sec = r["section"]
        if "wall_s" in r or ("ms" not in r and sec != "launch"):
            continue
        if sec == "launch":
            out.append(CalRow("launch eager tiny op", sec, "micro", "h200", "eager", r["eager_tiny_op_us"] * 1e-6,
                              Work(kernels=1, fixed=False)))
            out.append(CalRow("launch graphed tiny op", sec, "micro", "h200", "graph", r["graphed_tiny_op_us"] * 1e-6,
                              Work(kernels=1, fixed=False)))
        elif sec == "gemm":
            out.append(CalRow(f"gemm {r['m']}x{r['n']}x{r['k']}", sec, "micro", "h200", "eager", r["ms"] * 1e-3,
                              gemm_work(r["m"], r["n"], r["k"])))
        elif sec == "copy":
            if r["kind"] == "d2d":
                out.append(CalRow("copy d2d 1 GiB", sec, "micro", "h200", "eager", r["ms"] * 1e-3,
                                  Work(bytes=2.0 * r["bytes"], kernels=1)))
            elif "pinned" in r["kind"]:
                out.append(CalRow(f"copy {r['kind']} {r['bytes']} B", sec, "link", "h200", "eager", r["ms"] * 1e-3,
                                  Work(bytes=float(r["bytes"]))))
        elif sec in ("llm_prefill", "llm_decode", "embed", "vsearch") and r.get("device") == "gpu":
            mode: Literal["eager", "graph"] = "graph" if r.get("mode") == "cudagraph" else "eager"
            if sec == "llm_prefill":
                op = OpSpec(op="prefill", model=r["model"], tokens=r["tokens"])
                label = f"prefill {r['model']} T={r['tokens']}"
            elif sec == "llm_decode":
                op = OpSpec(op="decode", model=r["model"], ctx=r["ctx"])
                label = f"decode {r['model']} b={r['batch']} ctx={r['ctx']} {mode}"
            elif sec == "embed":
                op = OpSpec(op="encode", model=MODEL_NAMES.get(r["model"], r["model"]), tokens=r["tokens"])
                label = f"encode {op.model} b={r['batch']} T={r['tokens']}"
            else:
                op = OpSpec(op="ann_search", n=r["n"], dim=r["dim"], k=r["k"])
                label = f"ann_search n={r['n']} q={r['queries']}"
            batch = r.get("batch", r.get("queries", 1))
            model = cat.model(op.model) if op.model else None
            split: Split = "other"
            if op.model == "llama-3.2-1b":
                split = "fit"
            elif op.model == "llama-3.1-8b":
                split = "predict"
            out.append(CalRow(label, sec, split, "h200", mode, r["ms"] * 1e-3, op_work(op, model, batch), op, batch))
    return out


def _tiny_model(arch: dict[str, Any]) -> ModelSpec:
    stack = StackSpec(layers=arch["layers"], d_model=arch["d_model"], heads=arch["heads"], kv_heads=arch["kv_heads"],
                      ffn=arch["ffn"], vocab=arch["vocab"])
    return ModelSpec(name=arch["name"], source=Source(title="bench/cpu_timings.py", url="bench/cpu_timings.py"),
                     dtype="fp32", decoder=stack)


def local_cpu(env: dict[str, Any], copy_gbps: float, bw_eff: float) -> DeviceSpec:
    """This machine as a catalog CPU: peak = cores x clock x FLOP/cycle; peak bandwidth = measured copy / `bw_eff`."""
    def a(v: float, unit: str, note: str) -> Figure:
        return Figure(value=v, unit=unit, tag="assumption", note=note)
    peak = env["cores"] * env["ghz"] * env["fp32_flops_per_cycle"] / 1e3
    return DeviceSpec(
        name="local-cpu", label=env["cpu"], kind="cpu",
        flops={"fp32": a(peak, "TFLOP/s", f"{env['cores']} cores x {env['ghz']} GHz x "
                                          f"{env['fp32_flops_per_cycle']} FLOP/cycle ({env['flops_per_cycle_note']})")},
        mem_gb=a(16, "GB", "this machine"), mem_bw_gbps=a(copy_gbps / bw_eff, "GB/s", "measured copy / bw_eff"),
        tdp_w=a(0, "W", "n/a"), capex_usd=a(0, "USD", "n/a"), cloud_usd_per_hour=a(0, "USD/hour", "n/a"),
        cores=a(env["cores"], "cores", "this machine"), clock_ghz=a(env["ghz"], "GHz", "this machine"))


PEAK_GEMM_ROWS = 512
"""GEMMs of at least this many rows (prefill-sized) define a CPU's measured fp32 peak: the best of them."""


def gemm_peak_gflops(rows: list[dict[str, Any]]) -> float:
    """The best fp32 GFLOP/s of the prefill-sized GEMM rows (bench/cpu_timings.py's and calibrate's format)."""
    return max(r["gflops"] for r in rows if r["section"] == "gemm" and r["m"] >= PEAK_GEMM_ROWS)


def rebased_factors(factors: ClassFactors | None = None) -> dict[str, tuple[float, str]]:
    """The CPU class factors for a device whose peak FLOP/s and bandwidth are measured kernel rates.

    The class fit (planner/catalog/factors.yaml) was made on the reference machine (planner/data/
    cpu_timings.jsonl) against a spec-sheet peak (cores x clock x FLOP/cycle), a copy rate for bandwidth and
    a model's per-op overhead. A calibrated device carries measured rates instead, so its compute_eff and
    launch_eager_s are the class's re-based by the reference machine's own measured rates: on the reference
    machine the calibrated device prices every op as the class fit does. bw_eff needs no re-basing (the fit's
    peak bandwidth was the copy rate already); fixed_s and the rest are carried as they are.

    Returns: factor name -> (value, how it was derived); launch_eager_s's value is a ratio to the measured
    tiny op.
    """
    f = factors or builtin_factors().cpu
    ref = read_jsonl("plait.planner.data", CPU_FILE)
    env = next(r for r in ref if r["section"] == "env")
    spec_gflops = env["cores"] * env["ghz"] * env["fp32_flops_per_cycle"]
    gemm = gemm_peak_gflops(ref)
    launch_us = next(r for r in ref if r["section"] == "launch")["eager_tiny_op_us"]
    where = f"the reference machine ({env['cpu']}, {env['cores']} cores, planner/data/{CPU_FILE})"
    return {
        "compute_eff": (round(f.compute_eff * spec_gflops / gemm, 4),
                        f"CPU class fit {f.compute_eff:g} of a spec-sheet peak ({spec_gflops:.1f} GFLOP/s) re-based "
                        f"to the measured GEMM peak ({gemm:g} GFLOP/s) of {where}"),
        "launch_eager_s": (round(f.launch_eager_s / (launch_us * 1e-6), 4),
                           f"the CPU class fit's per-op time ({f.launch_eager_s * 1e6:.3g} us) over the tiny op "
                           f"({launch_us:g} us) of {where}"),
    }


def local_device(rows: list[dict[str, Any]], measured_by: str, usd_per_hour: float | None = None) -> DeviceSpec:
    """This machine as the catalog's `local` CPU device, from calibrate's kernel rows (codegen/microbench.py).

    Peak fp32 FLOP/s is the best prefill-sized GEMM, bandwidth the copy rate (read + write), the per-op
    overhead the tiny op's time; each figure's source is `measured_by` ("measured by `plait calibrate --cpu`
    on DATE, CPU"). Its factors are the CPU class fit re-based to measured rates (`rebased_factors`), so it is
    priced by the same cost functions as every CPU. $/hour: 0 (a machine one has) unless `usd_per_hour`.
    """
    env = next(r for r in rows if r["section"] == "env")
    copy = next(r for r in rows if r["section"] == "copy")
    launch_us = next(r for r in rows if r["section"] == "launch")["eager_tiny_op_us"]
    gemms = [r for r in rows if r["section"] == "gemm"]
    best = max((r for r in gemms if r["m"] >= PEAK_GEMM_ROWS), key=lambda r: r["gflops"])
    decode = min(gemms, key=lambda r: r["m"])

    def m(value: float, unit: str, note: str) -> Figure:
        return Figure(value=value, unit=unit, tag="measured", source=measured_by, note=note)

    def a(value: float, unit: str, note: str) -> Figure:
        return Figure(value=value, unit=unit, tag="assumption", note=note)

    rebased = rebased_factors()
    factors = {
        "compute_eff": Figure(value=rebased["compute_eff"][0], tag="computed", source=measured_by,
                              note=rebased["compute_eff"][1]),
        "launch_eager_s": Figure(value=round(launch_us * 1e-6 * rebased["launch_eager_s"][0], 9), unit="s",
                                 tag="measured", source=measured_by,
                                 note=f"tiny eager op {launch_us:g} us x {rebased['launch_eager_s'][0]:g} "
                                      f"({rebased['launch_eager_s'][1]})")}
    price = (Figure(value=usd_per_hour, unit="USD/hour", tag="sourced", source=measured_by,
                    note="declared with --usd-per-hour")
             if usd_per_hour is not None else
             a(0.0, "USD/hour", "a machine one has is not billed by the hour: 0 (declare a figure with "
                                "`plait calibrate --cpu --usd-per-hour X`)"))
    ghz = env.get("ghz")
    device = DeviceSpec(
        name="local", label=f"{env['cpu']} (this machine, {env['cores']} cores)", kind="cpu",
        vendor=env.get("vendor", "unknown"),
        flops={"fp32": m(round(best["gflops"] / 1e3, 5), "TFLOP/s",
                         f"fp32 GEMM {best['m']}x{best['n']}x{best['k']}, best of its runs, {env['threads']} "
                         f"threads (decode-shaped {decode['m']}x{decode['n']}x{decode['k']}: "
                         f"{decode['gflops']:g} GFLOP/s; spec-sheet peak {env['cores']} cores x {ghz} GHz x "
                         f"{env['fp32_flops_per_cycle']} FLOP/cycle, {env['flops_per_cycle_note']})")},
        mem_gb=m(round(env["mem_bytes"] / 1e9, 2), "GB", "MemTotal of /proc/meminfo"),
        mem_bw_gbps=m(copy["gbps_rw"], "GB/s", f"copy of {copy['bytes'] >> 20} MiB, read + write, best of its runs"),
        tdp_w=a(0.0, "W", "not measured"), capex_usd=a(0.0, "USD", "a machine one has"),
        cloud_usd_per_hour=price, factors=factors,   # type: ignore[arg-type]
        cores=m(env["cores"], "cores", "os.sched_getaffinity: the cores plait may use here"),
        clock_ghz=m(ghz, "GHz", "cpu MHz of /proc/cpuinfo") if ghz else None,
        inventory_only=True)
    engine = next((r for r in rows if r["section"] == "engine"), None)
    return device if engine is None else with_engine_step(device, engine, measured_by)


def with_engine_step(device: DeviceSpec, row: dict[str, Any], measured_by: str) -> DeviceSpec:
    """`device` whose fixed cost per model step (fixed_s) makes plait's engine decode step cost what `row` measured.

    The CPU class's fixed_s was fitted on another stack's forward passes; plait's engine adds its own per-step
    work (scheduling, sampling, the paged KV gather): 2.8 ms measured against 1.8 ms predicted for a
    llama-3.1-8b@tiny step here, which made every TPOT 1.4-1.7x the plan's (docs/predict_vs_run.md)."""
    from plait.planner.costmodel import estimate

    op = OpSpec(op="decode", model=row["model"], ctx=row["ctx"])
    class_fixed = builtin_factors().for_device(device).fixed_s
    predicted = estimate(op, device, row["batch"], "eager").seconds
    fixed = max(0.0, class_fixed + row["ms"] * 1e-3 - predicted)
    note = (f"plait's engine: a decode step of {row['model']} (batch {row['batch']}, context {row['ctx']}) took "
            f"{row['ms']:g} ms; the kernels' figures with the CPU class's fixed_s ({class_fixed * 1e3:.3g} ms) predicted "
            f"{predicted * 1e3:.3g} ms, so fixed_s is the class's plus the difference")
    figure = Figure(value=round(fixed, 7), unit="s", tag="measured", source=measured_by, note=note)
    return device.model_copy(update={"factors": {**device.factors, "fixed_s": figure}})


def cpu_rows(bw_eff: float) -> tuple[DeviceSpec, list[CalRow]]:
    """This machine's timings (bench/cpu_timings.py output, checked in) and the DeviceSpec they describe."""
    rows = read_jsonl("plait.planner.data", CPU_FILE)
    env = next(r for r in rows if r["section"] == "env")
    copy = next(r for r in rows if r["section"] == "copy")
    dev = local_cpu(env, copy["gbps_rw"], bw_eff)
    out: list[CalRow] = []
    for r in rows:
        sec = r["section"]
        if sec == "launch":
            out.append(CalRow("launch eager tiny op", sec, "fit", "local-cpu", "eager", r["eager_tiny_op_us"] * 1e-6,
                              Work(kernels=1, dtype="fp32", fixed=False)))
        elif sec == "gemm":
            out.append(CalRow(f"gemm {r['m']}x{r['n']}x{r['k']}", sec, "fit", "local-cpu", "eager", r["ms"] * 1e-3,
                              gemm_work(r["m"], r["n"], r["k"], "fp32", 4, fixed=True)))
        elif sec == "llm_prefill":
            m = _tiny_model(r["arch"])
            out.append(CalRow(f"prefill {m.name} T={r['tokens']}", sec, "fit", "local-cpu", "eager", r["ms"] * 1e-3,
                              prefill_work(m, r["batch"], r["tokens"])))
        elif sec == "llm_decode":
            m = _tiny_model(r["arch"])
            out.append(CalRow(f"decode {m.name} b={r['batch']} ctx={r['ctx']}", sec, "fit", "local-cpu", "eager",
                              r["ms"] * 1e-3, decode_work(m, r["batch"], r["ctx"]), batch=r["batch"]))
    return dev, out


def host_gaps() -> list[tuple[str, float]]:
    """The eager decode rows timed both by wall clock and by CUDA events: (label, (wall - events) / events).

    The difference is host time between steps that the device does not see: the nearest thing in the
    calibration data to an engine's scheduling gap, which the cost model has no term for.
    """
    out = []
    for r in read_jsonl("plait.planner.data.calibration", GPU_FILE):
        if r.get("section") == "llm_decode" and "wall_ms" in r and "ms" in r:
            label = f"decode {r['model']} b={r['batch']} ctx={r['ctx']} eager"
            out.append((label, r["wall_ms"] / r["ms"] - 1.0))
    return out
