"""bench/gpu_check.sh's measurements beside the cost model's predictions for that GPU: a table and JSON.

Each measured row (a prefill of one prompt; a decode step of `batch` sequences at `context` tokens, eager or
from CUDA graphs) is set beside plait.planner.costmodel.time_work for llama-3.1-8b on the catalog device
(--device, default h200) with the built-in GPU factors, in the same mode (a CPU smoke sample's "static"
rows are eager). Ratio = measured / predicted. A CPU smoke sample (gpu_check.sh --cpu-smoke) is a tiny
model on a CPU: its table says so at the top, and its ratios mean nothing about the GPU.

Run: `.venv/bin/python bench/gpu_compare.py [gpu-results/gpu_check.json] [--device h200] [--out FILE]`
(default input: the committed smoke sample bench/results/gpu_check_cpu_smoke_sample.json).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from plait.planner.catalog import load_catalog
from plait.planner.costmodel import time_work
from plait.planner.factors import builtin_factors
from plait.planner.workload import decode_work, prefill_work

RESULTS = Path(__file__).resolve().parent / "results"
SAMPLE = RESULTS / "gpu_check_cpu_smoke_sample.json"
MODEL = "llama-3.1-8b"
SMOKE_BANNER = ("CPU SMOKE SAMPLE - a tiny model on a CPU, produced to test gpu_check.sh and this script; NOT a "
                "GPU measurement, so the ratios below say nothing about the GPU")


def compare(measured: dict[str, Any], device_name: str = "h200") -> dict[str, Any]:
    """Rows of measured and predicted milliseconds for every prefill and decode row of a gpu_check.json."""
    if measured.get("format") != "plait-gpu-check/1":
        raise SystemExit(f"gpu_compare: the input's format is {measured.get('format')!r}, not 'plait-gpu-check/1'. "
                         "To fix: give the gpu_check.json that bench/gpu_check.sh wrote")
    catalog = load_catalog()
    device, spec = catalog.device(device_name), catalog.model(MODEL)
    factors = builtin_factors().for_device(device)
    rows = []
    for r in measured["prefill"]:
        predicted = time_work(prefill_work(spec, r["batch"], r["tokens"]), device, factors, mode="eager")
        rows.append({"op": "prefill", "batch": r["batch"], "tokens": r["tokens"], "mode": "eager",
                     "measured_ms": r["ms_min"], "predicted_ms": predicted["seconds"] * 1e3})
    for r in measured["decode"]:
        mode = "graph" if r["mode"] == "graph" else "eager"
        predicted = time_work(decode_work(spec, r["batch"], r["context"] + 1), device, factors, mode=mode)
        rows.append({"op": "decode", "batch": r["batch"], "tokens": r["context"], "mode": r["mode"],
                     "measured_ms": r["ms_median"], "predicted_ms": predicted["seconds"] * 1e3})
    for row in rows:
        row["ratio"] = row["measured_ms"] / row["predicted_ms"]
    return {"smoke": bool(measured.get("smoke")), "note": measured.get("note", ""),
            "measured_on": measured["device"], "measured_model": measured["model"],
            "predicted_for": {"device": device.name, "model": MODEL}, "rows": rows}


def render(result: dict[str, Any]) -> str:
    lines = [SMOKE_BANNER, ""] if result["smoke"] else []
    m = result["measured_on"]
    lines.append(f"measured: {result['measured_model']['name']} ({result['measured_model']['dtype']}, random weights) "
                 f"on {m['name']} (torch {m['torch']}); predicted: {MODEL} on {result['predicted_for']['device']}")
    lines.append(f"{'op':<8} {'batch':>5} {'tokens/ctx':>10} {'mode':<7} {'measured ms':>12} {'predicted ms':>13} "
                 f"{'ratio':>7}")
    for r in result["rows"]:
        lines.append(f"{r['op']:<8} {r['batch']:>5} {r['tokens']:>10} {r['mode']:<7} {r['measured_ms']:>12.2f} "
                     f"{r['predicted_ms']:>13.2f} {r['ratio']:>7.2f}")
    graphs = {(r["batch"], r["mode"]): r["measured_ms"] for r in result["rows"] if r["op"] == "decode"}
    for batch in sorted({b for b, _ in graphs}):
        fast = graphs.get((batch, "graph"), graphs.get((batch, "static")))
        if fast is not None and (batch, "eager") in graphs:
            lines.append(f"decode batch {batch}: eager / graphed = {graphs[(batch, 'eager')] / fast:.2f}x")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("input", nargs="?", default=str(SAMPLE), help="a gpu_check.json")
    ap.add_argument("--device", default="h200", help="the catalog device the predictions are for")
    ap.add_argument("--out", default=None, help="where to write the comparison JSON "
                                                "(default: gpu_compare.json beside the input)")
    args = ap.parse_args(argv)
    path = Path(args.input)
    if not path.is_file():
        raise SystemExit(f"gpu_compare: {path} does not exist. To fix: run bench/gpu_check.sh on a GPU "
                         "(it writes $OUT/gpu_check.json), or leave the argument out for the committed sample")
    result = compare(json.loads(path.read_text()), args.device)
    print(render(result))
    out = Path(args.out) if args.out else path.with_name("gpu_compare.json")
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
