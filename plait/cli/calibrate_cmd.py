"""`plait calibrate --cpu`: time this machine's CPU kernels and write it as the `local` device of the user catalog."""

from __future__ import annotations

import json
import os
import time
from typing import Annotated, Any

import typer

from plait.cli._errors import user_errors


def calibrate(
    cpu: Annotated[bool, typer.Option("--cpu", help="Time this machine's CPU: GEMMs (decode and prefill shapes), a "
                                                    "memory copy, the per-op overhead (about 10 s).")] = False,
    usd_per_hour: Annotated[float | None, typer.Option(
        "--usd-per-hour", min=0, help="What this machine costs per hour, if you want plans for it priced "
                                      "(default 0: a machine you have).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the measured rows as JSON lines.")] = False,
) -> None:
    """Measure this machine and write it as the `local` device of your user catalog ($PLAIT_CONFIG_DIR/catalog.yaml,
    default ~/.config/plait/catalog.yaml), which plait plan, simulate, cost and run read."""
    if not cpu:
        raise typer.BadParameter("only CPU calibration exists so far: pass --cpu", param_hint="--cpu")
    with user_errors():
        from plait.planner.catalog import LOCAL_DEVICE
        from plait.planner.catalog.user import user_catalog_path

        device, rows, seconds = measure_and_save(usd_per_hour)
        path = user_catalog_path()
    if as_json:
        for r in rows:
            typer.echo(json.dumps(r))
    _print_figures(rows, device, seconds)
    backup = path.with_name(path.name + ".bak")
    typer.echo(f"wrote the {LOCAL_DEVICE!r} device to {path}"
               + (f" (the file before is {backup})" if backup.is_file() else ""))
    typer.echo("plan for this machine: plait plan FILE:AGENT --device local --out DIR; or just plait run FILE:AGENT")


def measure_and_save(usd_per_hour: float | None) -> tuple[Any, list[dict[str, Any]], float]:
    """Time the kernels and write `local` into the user catalog: (its DeviceSpec, the rows, seconds measuring)."""
    from plait.codegen.microbench import engine_step_row, kernel_rows
    from plait.planner.calibration import local_device
    from plait.planner.catalog import LOCAL_DEVICE
    from plait.planner.catalog.user import existing_data, save_entry, user_catalog_path

    path = user_catalog_path()
    data = existing_data(path)   # a broken file stops us before 10 s of measuring
    typer.echo("measuring this machine's CPU kernels (GEMMs, a copy, the per-op overhead)...", err=True)
    before = os.getloadavg()[0]
    start = time.perf_counter()
    rows = [*kernel_rows(), engine_step_row()]
    seconds = time.perf_counter() - start
    load = max(before, os.getloadavg()[0])
    measured_by = (f"measured by `plait calibrate --cpu` on {time.strftime('%Y-%m-%d')}, {rows[0]['cpu']}, "
                   f"load average {load:.2f}")
    if (warning := busy_warning(load, rows[0]["cores"])) is not None:
        typer.echo(warning, err=True)
    device = local_device(rows, measured_by, usd_per_hour)
    save_entry(path, data, "devices", LOCAL_DEVICE, device.model_dump(mode="json", exclude={"name"}, exclude_none=True))
    return device, rows, seconds


BUSY_LOAD_PER_CORE = 1.0
"""A 1-minute load average above this many runnable processes per core: other work shared the cores."""


def busy_warning(load: float, cores: int) -> str | None:
    """What to do when the machine was busy while it was measured (None when it was not): the kernels then get a
    share of the cores, and every figure is too low (4x under a load of 5 on 2 cores, in bench/predict_vs_run.py)."""
    if load <= BUSY_LOAD_PER_CORE * cores:
        return None
    return (f"warning: the load average was {load:.2f} on {cores} cores while measuring: other processes shared the "
            "cores, so the figures are too low and plans for `local` too slow\n  To fix: run `plait calibrate "
            "--cpu` again when the machine is idle (`uptime` shows the load).")


def _print_figures(rows: list[dict[str, Any]], device: Any, seconds: float) -> None:
    gemms = [r for r in rows if r["section"] == "gemm"]
    env = rows[0]
    launch = next(r for r in rows if r["section"] == "launch")
    copy = next(r for r in rows if r["section"] == "copy")
    typer.echo(f"{env['cpu']}: {env['cores']} cores, {env['ghz']} GHz, {env['mem_bytes'] / 1e9:.1f} GB "
               f"(measured in {seconds:.1f} s, {env['threads']} threads)")
    for r in gemms:
        typer.echo(f"  gemm fp32 {r['m']:>5}x{r['n']}x{r['k']}  {r['ms']:9.3f} ms  {r['gflops']:7.1f} GFLOP/s")
    typer.echo(f"  copy {copy['bytes'] >> 20} MiB           {copy['ms']:9.3f} ms  {copy['gbps_rw']:7.2f} GB/s "
               "(read + write)")
    typer.echo(f"  tiny eager op          {launch['eager_tiny_op_us']:9.3f} us")
    for r in (r for r in rows if r["section"] == "engine"):
        typer.echo(f"  engine decode step     {r['ms']:9.3f} ms  ({r['model']}, batch {r['batch']}, context {r['ctx']}: "
                   f"fixed_s {device.factors['fixed_s'].value * 1e3:.3g} ms per step)")
    spec = env["cores"] * (env["ghz"] or 0) * env["fp32_flops_per_cycle"]
    typer.echo(f"local: peak fp32 {device.flops['fp32'].value * 1e3:.1f} GFLOP/s (measured; spec sheet "
               f"{spec:.0f}), {device.mem_bw_gbps.value:g} GB/s, per-op {device.factors['launch_eager_s'].value * 1e6:.2f}"
               f" us, compute_eff {device.factors['compute_eff'].value:g}, "
               f"${device.cloud_usd_per_hour.value:g}/hour")
