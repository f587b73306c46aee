"""`plait catalog devices|models`: what the planner knows, with its figures and where the prices come from."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

import typer

from plait.cli._errors import output_console, user_errors

DEVICE_COLUMNS = ("device", "kind", "vendor", "TFLOP/s", "mem GB", "GB/s", "$/hour", "price basis", "TCO $/hour",
                  "measured factors")
MODEL_COLUMNS = ("model", "stacks", "params B", "dtype", "layers", "d_model", "aliases", "scales", "source")


def device_rows(catalog: Any) -> list[dict[str, Any]]:
    """One dict per device: its headline figures, cloud price with basis and flag, TCO price, measured factors."""
    from plait.planner.catalog.prices import device_price
    from plait.planner.costmodel import price_per_hour

    out = []
    for name in sorted(catalog.devices):
        d = catalog.devices[name]
        dtype = "bf16" if "bf16" in d.flops else "fp32"
        p = device_price(d)
        out.append({"device": name, "kind": d.kind, "vendor": d.vendor, "label": d.label, "dtype": dtype,
                    "tflops": d.flops[dtype].value, "mem_gb": d.mem_gb.value, "mem_bw_gbps": d.mem_bw_gbps.value,
                    "usd_per_hour": p.usd_per_hour, "price_basis": p.basis, "price_flag": p.flag,
                    "price_quotes": dict(d.cloud_quotes), "tco_usd_per_hour": round(price_per_hour(d, "tco"), 4),
                    "measured_factors": {k: f.value for k, f in d.factors.items()}})
    return out


def model_rows(catalog: Any) -> list[dict[str, Any]]:
    """One dict per model: its stacks, parameters (billions), dtype, decoder or encoder shape, source."""
    from plait.planner.workload import stack_params, vocoder_params

    out = []
    for name in sorted(catalog.models):
        m = catalog.models[name]
        params = 0
        stacks = []
        for role in ("decoder", "encoder"):
            if (s := getattr(m, role)) is not None:
                params += stack_params(s, role)["total"]
                stacks.append(role)
        if m.vocoder is not None:
            params += vocoder_params(m.vocoder)
            stacks.append("vocoder")
        main = m.decoder or m.encoder
        out.append({"model": name, "stacks": stacks, "params_b": round(params / 1e9, 3), "dtype": m.dtype,
                    "layers": main.layers if main else None, "d_model": main.d_model if main else None,
                    "aliases": list(m.aliases), "scales": _scales(catalog, name), "source": m.source.title,
                    "url": m.source.url})
    return out


def _scales(catalog: Any, name: str) -> dict[str, dict[str, Any]]:
    """scale -> its parameters (millions) and dimensions, for a dense LLM's `model@scale` sizes."""
    from plait.planner.catalog import SCALE_SEP
    from plait.planner.workload import stack_params

    out = {}
    for scale, dims in catalog.models[name].scales.items():
        decoder = catalog.model(f"{name}{SCALE_SEP}{scale}").decoder
        out[scale] = {"params_m": round(stack_params(decoder, "decoder")["total"] / 1e6, 1), **dims.model_dump()}
    return out


def _device_cells(r: dict[str, Any]) -> list[str]:
    basis = r["price_basis"] + (f"; FLAG: {r['price_flag']}" if r["price_flag"] else "")
    factors = ", ".join(f"{k} {v:g}" for k, v in r["measured_factors"].items()) or "-"
    return [r["device"], r["kind"], r["vendor"], f"{r['tflops']:g} {r['dtype']}", f"{r['mem_gb']:g}",
            f"{r['mem_bw_gbps']:g}", f"{r['usd_per_hour']:.3f}", basis, f"{r['tco_usd_per_hour']:.3f}", factors]


def _model_cells(r: dict[str, Any]) -> list[str]:
    scales = ", ".join(f"@{k} {v['params_m']:g}M ({v['layers']}x{v['d_model']}, {v['heads']}/{v['kv_heads']} heads)"
                       for k, v in r["scales"].items())
    return [r["model"], "+".join(r["stacks"]), f"{r['params_b']:.3f}", r["dtype"], str(r["layers"] or "-"),
            str(r["d_model"] or "-"), ", ".join(r["aliases"]) or "-", scales or "-", r["source"]]


def catalog(
    what: Annotated[Literal["devices", "models"], typer.Argument(help="devices or models")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    catalog_file: Annotated[str | None, typer.Option(
        "--catalog", help="Extra catalog YAML (devices/models, or price overrides) laid over the built-in one.")] = None,
) -> None:
    """List the devices or models the planner knows, with their figures (prices with their basis and source)."""
    with user_errors():
        from rich.markup import escape
        from rich.table import Table

        from plait.planner.catalog import load_catalog

        cat = load_catalog(catalog_file)
        rows = device_rows(cat) if what == "devices" else model_rows(cat)
        if as_json:
            typer.echo(json.dumps(rows, indent=1))
            return
        columns, cells = (DEVICE_COLUMNS, _device_cells) if what == "devices" else (MODEL_COLUMNS, _model_cells)
        title = ("plait catalog devices: cloud $/hour = median on-demand over runpod, lambda, coreweave, nebius"
                 if what == "devices" else "plait catalog models")
        table = Table(title=title)
        for c in columns:
            table.add_column(c, overflow="fold")
        for r in rows:
            table.add_row(*(escape(c) for c in cells(r)))
        output_console().print(table)
        if what == "devices":
            for line in measured_sources(cat):
                typer.echo(line)


def measured_sources(catalog: Any) -> list[str]:
    """Where each figure of the measured devices (plait calibrate's `local`) came from, one line per figure."""
    lines = []
    for name in sorted(catalog.devices):
        d = catalog.devices[name]
        figures = {**d.figures(), **{f"factors.{k}": f for k, f in d.factors.items()}}
        if not any(f.tag == "measured" for f in figures.values()):
            continue
        files = [f for f in catalog.files if f.endswith(".yaml") and "/" in f]
        lines.append(f"{name}: {d.label}" + (f" (from {files[0]})" if files else ""))
        for key, f in figures.items():
            lines.append(f"  {key} = {f.value:g} {f.unit}: {f.tag}" + (f", {f.source}" if f.source else "")
                         + (f" ({f.note})" if f.note else ""))
    return lines
