"""The paper's table, reproduced: prefill::decode pairs ranked by tokens/s per dollar, normalized to H100::H100.

"Efficient and Scalable Agentic AI with Heterogeneous Systems" (Asgar, Nguyen, Katti, arXiv 2507.19635) ranks
disaggregated prefill-device::decode-device pairs for Llama 3 8B/70B (FP16, FP8) on two shapes (512 in / 4096 out,
4096 in / 512 out) under TTFT <= 250 ms and time per output token <= 20 ms, with its Table 5 hardware and prices.
This script redoes that ranking with plait's cost model (planner/stage.py: stage_cost; planner/costmodel.py:
transfer_seconds) over the catalog extension planner/catalog/paper.yaml.

Run: .venv/bin/python bench/paper_table.py [--no-doc]
Prints the ranked tables, writes bench/results/paper.json and docs/paper.md.

Method (per workload, per pair; docs/paper.md says it in words):
  prefill side: for each degree tp and mode, the largest batch b (sequences) that fits without KV offload and
      meets TTFT = prefill(b) + KV transfer(b) <= 250 ms; requests/s = b / max(prefill(b), transfer(b)).
      The KV cache moves over the scale-up link when both sides are the same chip, else over the network
      (catalog default network_gbps, one NIC per device: each of the tp ranks sends its shard).
  decode side: for each tp and mode, the largest batch that fits at the final context (P + D) without offload
      and whose step at the mean context (P + D/2, continuous batching) is <= 20 ms; tokens/s = b / step.
  pair: a fluid fleet sized to a request rate: $/hour per (output token/s) = Cp/(Rp D) + Cd/Td, so
      tokens/s per $/hour = 1 / that; the best (tp, mode, batch) per side is the one with the lowest cost share.
  normalized to paper-h100::paper-h100 (the paper's H100 figure) of the same workload and basis.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

from plait.planner.catalog import Catalog, CatalogError, load_catalog
from plait.planner.costmodel import TcoParams, price_per_hour, transfer_seconds
from plait.planner.stage import StageCost, stage_cost
from plait.planner.workload import OpSpec

ROOT = Path(__file__).resolve().parent.parent
PAPER_YAML = ROOT / "planner" / "catalog" / "paper.yaml"
RESULTS = ROOT / "bench" / "results" / "paper.json"
DOC = ROOT / "docs" / "paper.md"

TTFT_S = 0.250
TPOT_S = 0.020
DEGREES = (1, 2, 4, 8)
MODES = ("eager", "graph")
PREFILL_MAX_BATCH = 512
DECODE_MAX_BATCH = 4096

# The paper's Table 5 devices (paper.yaml), and the chip each one is (same chip: KV over the scale-up link).
DEVICES = ("paper-a40", "paper-a100", "paper-gaudi3", "paper-mi300x", "paper-h100", "paper-h100-dense", "paper-b200")
CHIP = {"paper-a40": "a40", "paper-a100": "a100", "paper-gaudi3": "gaudi3", "paper-mi300x": "mi300x",
        "paper-h100": "h100", "paper-h100-dense": "h100", "paper-b200": "b200"}
SHORT = {"paper-a40": "A40", "paper-a100": "A100", "paper-gaudi3": "Gaudi3", "paper-mi300x": "MI300X",
         "paper-h100": "H100", "paper-h100-dense": "H100d", "paper-b200": "B200"}
BASE = ("paper-h100", "paper-h100")

MODELS = {("8B", "fp16"): "llama-3-8b", ("8B", "fp8"): "llama-3-8b-fp8",
          ("70B", "fp16"): "llama-3-70b", ("70B", "fp8"): "llama-3-70b-fp8"}
SHAPES = ((512, 4096), (4096, 512))

# Price bases: the paper's $/hour (primary; paper.yaml keeps it in cloud_usd_per_hour), and plait's TCO formula
# over the paper's capex with the built-in TDPs (4 years, 8%, $0.40/kWh).
BASES = {"paper": ("cloud", None), "tco": ("tco", TcoParams())}

# The paper's stated conclusions the comparison is checked against.
PAPER_BEST = ("paper-b200", "paper-gaudi3")
PAPER_TIE = (("paper-h100", "paper-gaudi3"), ("paper-b200", "paper-b200"))


@dataclasses.dataclass(frozen=True)
class Side:
    """The chosen configuration of one side of a pair (per replica), with its cost share."""

    device: str
    tp: int
    mode: str
    batch: int
    step_s: float              # prefill: one batch; decode: one step
    rate: float                # prefill: requests/s; decode: tokens/s (per replica)
    usd_per_hour: float        # per replica
    xfer_s: float = 0.0        # prefill: KV transfer of the batch
    link: str = ""             # prefill: scaleup | network
    regime: str = ""
    assumptions: tuple[str, ...] = ()

    @property
    def usd_per_hour_per_rate(self) -> float:
        return self.usd_per_hour / self.rate

    def as_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in dataclasses.asdict(self).items() if k != "assumptions"}
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in d.items()}


class Bench:
    """One catalog and price basis; memoizes the cost model calls (pure functions)."""

    def __init__(self, catalog: Catalog, basis: str = "cloud", tco: TcoParams | None = None) -> None:
        self.cat, self.basis, self.tco = catalog, basis, tco
        self.calls = 0
        self._cost = lru_cache(maxsize=None)(self._stage)

    def _stage(self, op: OpSpec, device: str, batch: int, mode: str, tp: int) -> StageCost | None:
        self.calls += 1
        try:
            c = stage_cost(op, device, batch, mode, tp, basis=self.basis, tco=self.tco,  # type: ignore[arg-type]
                           catalog=self.cat)
        except CatalogError:      # degree above the model's heads, no link for collectives
            return None
        return c if c.fits and not c.offloaded_kv else None

    def xfer(self, nbytes: float, device: str, link: str, tp: int) -> float:
        return transfer_seconds(nbytes / tp, device, "scaleup" if link == "scaleup" else "network", catalog=self.cat)

    def prefill(self, model: str, prompt: int, device: str, link: str) -> Side | None:
        op = OpSpec(op="prefill", model=model, tokens=prompt)
        best: Side | None = None
        for tp in DEGREES:
            for mode in MODES:
                def ok(b: int, tp: int = tp, mode: str = mode) -> bool:
                    c = self._cost(op, device, b, mode, tp)
                    return c is not None and c.latency_s + self.xfer(c.kv_transfer_bytes, device, link, tp) <= TTFT_S
                b = largest(ok, PREFILL_MAX_BATCH)
                if not b:
                    continue
                c = self._cost(op, device, b, mode, tp)
                assert c is not None
                x = self.xfer(c.kv_transfer_bytes, device, link, tp)
                side = Side(device, tp, mode, b, c.latency_s, b / max(c.latency_s, x), c.usd_per_hour, x, link,
                            c.regime, c.assumptions)
                if best is None or side.usd_per_hour_per_rate < best.usd_per_hour_per_rate:
                    best = side
        return best

    def decode(self, model: str, prompt: int, out: int, device: str) -> Side | None:
        mean = OpSpec(op="decode", model=model, ctx=prompt + out // 2)
        last = OpSpec(op="decode", model=model, ctx=prompt + out)
        best: Side | None = None
        for tp in DEGREES:
            for mode in MODES:
                def ok(b: int, tp: int = tp, mode: str = mode) -> bool:
                    c = self._cost(mean, device, b, mode, tp)
                    return c is not None and c.latency_s <= TPOT_S and self._cost(last, device, b, mode, tp) is not None
                b = largest(ok, DECODE_MAX_BATCH)
                if not b:
                    continue
                c = self._cost(mean, device, b, mode, tp)
                assert c is not None
                side = Side(device, tp, mode, b, c.latency_s, b / c.latency_s, c.usd_per_hour, regime=c.regime,
                            assumptions=c.assumptions)
                if best is None or side.usd_per_hour_per_rate < best.usd_per_hour_per_rate:
                    best = side
        return best


def largest(ok: Any, hi: int) -> int:
    """Largest b in [1, hi] with ok(b), for ok true up to some b and false after (memory and latency grow with b)."""
    if not ok(1):
        return 0
    lo = 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if ok(mid) else (lo, mid - 1)
    return lo


def pair_cost(ps: Side, ds: Side, out: int) -> tuple[float, float]:
    """$ per million output tokens of a fluid fleet: (prefill share, decode share)."""
    return ps.usd_per_hour_per_rate / out / 3600 * 1e6, ds.usd_per_hour_per_rate / 3600 * 1e6


def rank_workload(bench: Bench, model: str, prompt: int, out: int, devices: tuple[str, ...] = DEVICES,
                  base: tuple[str, str] = BASE) -> dict[str, Any]:
    """Every prefill::decode pair of `devices` for one workload: tokens/s per $/hour, normalized, ranked."""
    pre = {(d, link): bench.prefill(model, prompt, d, link) for d in devices for link in ("scaleup", "network")}
    dec = {d: bench.decode(model, prompt, out, d) for d in devices}
    pairs = []
    for p in devices:
        for d in devices:
            link = "scaleup" if CHIP[p] == CHIP[d] else "network"
            ps, ds = pre[(p, link)], dec[d]
            row: dict[str, Any] = {"pair": f"{SHORT[p]}::{SHORT[d]}", "prefill": p, "decode": d, "link": link}
            if ps is None or ds is None:
                why = []
                if ps is None:
                    why.append(f"no prefill configuration of {p} meets TTFT <= {TTFT_S * 1e3:g} ms")
                if ds is None:
                    why.append(f"no decode configuration of {d} meets {TPOT_S * 1e3:g} ms per token")
                row.update(feasible=False, why="; ".join(why), tokens_per_s_per_usd_hour=0.0)
            else:
                pre_usd, dec_usd = pair_cost(ps, ds, out)
                prefill_devices = ps.tp / ps.rate / out          # devices per (output token/s)
                decode_devices = ds.tp / ds.rate
                row.update(feasible=True, tokens_per_s_per_usd_hour=1e6 / 3600 / (pre_usd + dec_usd),
                           usd_per_mtok=pre_usd + dec_usd, prefill_usd_per_mtok=pre_usd, decode_usd_per_mtok=dec_usd,
                           prefill_cost_share=pre_usd / (pre_usd + dec_usd),
                           prefill_to_decode_devices=prefill_devices / decode_devices,
                           ttft_s=ps.step_s + ps.xfer_s, tpot_s=ds.step_s,
                           prefill_cfg=ps.as_dict(), decode_cfg=ds.as_dict())
            pairs.append(row)
    ref = next(r for r in pairs if (r["prefill"], r["decode"]) == base)
    if not ref["feasible"]:
        raise SystemExit(f"the reference pair {base} is infeasible for {model} {prompt}/{out}: {ref['why']}")
    for r in pairs:
        r["normalized"] = r["tokens_per_s_per_usd_hour"] / ref["tokens_per_s_per_usd_hour"]
    pairs.sort(key=lambda r: -r["normalized"])
    for i, r in enumerate(pairs, 1):
        r["rank"] = i if r["feasible"] else None
    sides = {d: {"prefill_cross_chip": pre[(d, "network")].as_dict() if pre[(d, "network")] else None,
                 "prefill_usd_per_mtok": pair_cost(pre[(d, "network")], pre[(d, "network")], out)[0]
                 if pre[(d, "network")] else None,
                 "decode": dec[d].as_dict() if dec[d] else None,
                 "decode_usd_per_mtok": pair_cost(dec[d], dec[d], out)[1] if dec[d] else None} for d in devices}
    assumptions = sorted({a for s in [*pre.values(), *dec.values()] if s is not None for a in s.assumptions})
    return {"model": model, "prompt": prompt, "output": out, "pairs": pairs, "sides": sides,
            "assumptions": assumptions}


def breakeven(sides: dict[str, dict[str, Any]], catalog: Catalog, side: str, device: str) -> dict[str, Any]:
    """The $/hour at which `device` would be the cheapest `side` (prefill | decode) device of a workload.

    A side's cost is linear in its device's price and the configuration chosen does not depend on the price (every
    device of a replica costs the same), so the break-even price is price x (cheapest other) / (its own cost).
    """
    key = "prefill_usd_per_mtok" if side == "prefill" else "decode_usd_per_mtok"
    mine = sides[device][key]
    others = {d: v[key] for d, v in sides.items() if CHIP[d] != CHIP[device] and v[key] is not None}
    price = catalog.device(device).cloud_usd_per_hour.value
    best = min(others, key=others.__getitem__)
    return {"device": device, "side": side, "price": price, "cheapest_other": best,
            "breakeven_price": None if mine is None else round(price * others[best] / mine, 3)}


def lookup(res: dict[str, Any], p: str, d: str) -> dict[str, Any]:
    return next(r for r in res["pairs"] if r["prefill"] == p and r["decode"] == d)


def variant(catalog: Catalog, *, network_gbps: float | None = None, vendor_flops: bool = False,
            builtin: bool = False) -> Catalog:
    """An in-memory variant of the paper catalog for a sensitivity run (paper.yaml itself is not changed).

    network_gbps: the between-server link the cross-chip KV transfer uses. vendor_flops: the paper devices' fp16/bf16
    replaced by the built-in dense vendor figures. builtin: the paper devices replaced by plait's own built-in entries
    (vendor figures and median on-demand cloud prices), keeping the paper-* names so the tables line up.
    """
    devices = dict(catalog.devices)
    for name in DEVICES:
        ref = catalog.device(BUILTIN[name])
        if builtin:
            devices[name] = ref.model_copy(update={"name": name})
        elif vendor_flops:
            flops = {**devices[name].flops, "fp16": ref.flops["fp16"], "bf16": ref.flops["bf16"],
                     "fp8": ref.flops.get("fp8", ref.flops["fp16"])}
            devices[name] = devices[name].model_copy(update={"flops": flops})
    defaults = dict(catalog.defaults)
    if network_gbps is not None:
        defaults["network_gbps"] = defaults["network_gbps"].model_copy(
            update={"value": network_gbps, "note": f"sensitivity run: {network_gbps:g} GB/s per device"})
    return dataclasses.replace(catalog, devices=devices, defaults=defaults)


# name -> (what it changes, catalog variant keywords, price basis, TCO parameters)
SCENARIOS: dict[str, tuple[str, dict[str, Any], str, TcoParams | None]] = {
    "paper": ("the paper's Table 5 figures and $/hour (primary)", {}, "cloud", None),
    "tco": ("price = plait's TCO of the paper's capex (4 y, 8%) + built-in TDP at $0.40/kWh", {}, "tco", TcoParams()),
    "network-50": ("paper basis; KV transfer between different chips over 400 GbE (50 GB/s) per device instead of "
                   "100 GbE", {"network_gbps": 50.0}, "cloud", None),
    "vendor-flops": ("paper basis; FP16 and FP8 TFLOP/s = vendor dense figures (A40 149.7, A100 312, Gaudi 3 1835, "
                     "H100 989.4 and FP8 1978.9)", {"vendor_flops": True}, "cloud", None),
    "plait-catalog": ("plait's own built-in device entries: vendor dense figures and median on-demand cloud $/hour",
                      {"builtin": True}, "cloud", None),
}
BUILTIN = {"paper-a40": "a40", "paper-a100": "a100-80gb", "paper-gaudi3": "gaudi3", "paper-mi300x": "mi300x",
           "paper-h100": "h100-sxm", "paper-h100-dense": "h100-sxm", "paper-b200": "b200"}


def run_all(catalog: Catalog, scenarios: tuple[str, ...] = tuple(SCENARIOS)) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in scenarios:
        what, kw, basis, tco = SCENARIOS[name]
        cat = variant(catalog, **kw) if kw else catalog
        bench = Bench(cat, basis, tco)
        rows = {}
        for (size, prec), model in MODELS.items():
            for prompt, gen in SHAPES:
                res = rank_workload(bench, model, prompt, gen)
                if name == "paper":
                    res["breakeven"] = [breakeven(res["sides"], cat, "decode", "paper-gaudi3"),
                                        breakeven(res["sides"], cat, "prefill", "paper-b200")]
                rows[f"{size} {prec} {prompt}/{gen}"] = res
        out[name] = {"what": what, "workloads": rows, "cost_model_calls": bench.calls}
    return out


# ---------------------------------------------------------------- printing and the doc


def fmt_pair(r: dict[str, Any]) -> str:
    return f"{r['pair']} {r['normalized']:.2f}" if r["feasible"] else f"{r['pair']} infeasible"


def cfg(s: dict[str, Any]) -> str:
    return f"tp{s['tp']} b{s['batch']} {s['mode']}"


def ranked_table(res: dict[str, Any], top: int | None = None) -> list[str]:
    head = ("| rank | prefill::decode | norm. | tok/s per $/h | prefill (tp, batch, mode) | TTFT ms | decode "
            "(tp, batch, mode) | step ms | prefill $ share | KV link |")
    lines = [head, "|" + "---|" * 10]
    feasible = [r for r in res["pairs"] if r["feasible"]]
    shown = feasible if top is None else feasible[:top]
    for r in shown:
        lines.append(f"| {r['rank']} | {r['pair']} | **{r['normalized']:.2f}** | {r['tokens_per_s_per_usd_hour']:,.0f} | "
                     f"{cfg(r['prefill_cfg'])} | {r['ttft_s'] * 1e3:.0f} | {cfg(r['decode_cfg'])} | "
                     f"{r['tpot_s'] * 1e3:.1f} | {r['prefill_cost_share']:.0%} | {r['link']} |")
    bad = [r for r in res["pairs"] if not r["feasible"]]
    if bad:
        lines.append("")
        lines.append("Infeasible: " + "; ".join(sorted({r["why"] for r in bad})) + ".")
    return lines


def matrix(res: dict[str, Any]) -> list[str]:
    lines = ["| prefill \\ decode | " + " | ".join(SHORT[d] for d in DEVICES) + " |",
             "|---|" + "---|" * len(DEVICES)]
    for p in DEVICES:
        cells = []
        for d in DEVICES:
            r = lookup(res, p, d)
            cells.append(f"{r['normalized']:.2f}" if r["feasible"] else "-")
        lines.append(f"| {SHORT[p]} | " + " | ".join(cells) + " |")
    return lines


def print_tables(results: dict[str, Any]) -> None:
    for bname, b in results.items():
        print(f"\n=== basis: {bname} (normalized to {SHORT[BASE[0]]}::{SHORT[BASE[1]]}) ===")
        for key, res in b["workloads"].items():
            top = [r for r in res["pairs"] if r["feasible"]][:6]
            marks = {k: lookup(res, *pq) for k, pq in (("B200::Gaudi3", PAPER_BEST), ("H100::Gaudi3", PAPER_TIE[0]),
                                                      ("B200::B200", PAPER_TIE[1]))}
            print(f"{key:>18}: " + ", ".join(fmt_pair(r) for r in top))
            print(" " * 20 + "  ".join(f"{k} #{r['rank']} {r['normalized']:.2f}" for k, r in marks.items()))


def summary(results: dict[str, Any]) -> dict[str, Any]:
    """The paper's two claims, per workload and basis."""
    out: dict[str, Any] = {}
    for bname, b in results.items():
        for key, res in b["workloads"].items():
            best = next(r for r in res["pairs"] if r["feasible"])
            b2g, h2g, bb = lookup(res, *PAPER_BEST), lookup(res, *PAPER_TIE[0]), lookup(res, *PAPER_TIE[1])
            out.setdefault(bname, {})[key] = {
                "best": best["pair"], "best_normalized": round(best["normalized"], 3),
                "b200_gaudi3_rank": b2g["rank"], "b200_gaudi3": round(b2g["normalized"], 3),
                "h100_gaudi3": round(h2g["normalized"], 3), "b200_b200": round(bb["normalized"], 3),
                "h100_gaudi3_over_b200_b200": round(h2g["normalized"] / bb["normalized"], 3) if bb["feasible"] else None,
                "h100dense_h100dense": round(lookup(res, "paper-h100-dense", "paper-h100-dense")["normalized"], 3),
            }
    return out


def device_table(catalog: Catalog) -> list[str]:
    lines = ["| device | FP16 TFLOP/s | FP8 TFLOP/s | memory GB | GB/s | $/hour (paper) | capex $ | TDP W "
             "(built-in) | $/hour (tco) |", "|---|---|---|---|---|---|---|---|---|"]
    for name in DEVICES:
        d = catalog.device(name)
        f16, f8 = d.flops["fp16"], d.flops["fp8"]
        mark8 = "" if f8.tag != "assumption" else " (W8A16, assumed)"
        lines.append(f"| {name} | {f16.value:g} ({f16.tag}) | {f8.value:g}{mark8} | {d.mem_gb.value:g} | "
                     f"{d.mem_bw_gbps.value:g} | {d.cloud_usd_per_hour.value:.2f} | {d.capex_usd.value:,.0f} | "
                     f"{d.tdp_w.value:g} | {price_per_hour(d, 'tco', TcoParams()):.3f} |")
    return lines


def _workloads_of(results: dict[str, Any], scenario: str = "paper") -> dict[str, dict[str, Any]]:
    return results[scenario]["workloads"]


def side_table(res: dict[str, Any]) -> list[str]:
    lines = ["| device | prefill (tp, batch, mode) | TTFT ms (cross-chip) | prefill $/M out tok | decode (tp, batch, mode) "
             "| decode tok/s per replica | decode $/M out tok |", "|---|---|---|---|---|---|---|"]
    for d in DEVICES:
        s = res["sides"][d]
        pc, dc = s["prefill_cross_chip"], s["decode"]
        pre = (f"{cfg(pc)} | {(pc['step_s'] + pc['xfer_s']) * 1e3:.0f} | {s['prefill_usd_per_mtok']:.4f}" if pc
               else "- | - | infeasible")
        dec = f"{cfg(dc)} | {dc['rate']:,.0f} | {s['decode_usd_per_mtok']:.4f}" if dc else "- | - | infeasible"
        lines.append(f"| {SHORT[d]} | {pre} | {dec} |")
    return lines


def render_doc(results: dict[str, Any], catalog: Catalog, summ: dict[str, Any], runtime_s: float) -> str:
    """docs/paper.md: the method, the ranked tables, and the comparison with the paper's conclusions."""
    W = _workloads_of(results)
    S = summ["paper"]
    dev = {d: catalog.device(d) for d in DEVICES}
    bw_per_usd = {d: dev[d].mem_bw_gbps.value / dev[d].cloud_usd_per_hour.value for d in DEVICES}
    fl_per_usd = {d: dev[d].flops["fp16"].value / dev[d].cloud_usd_per_hour.value for d in DEVICES}
    f8_per_usd = {d: dev[d].flops["fp8"].value / dev[d].cloud_usd_per_hour.value for d in DEVICES}

    def order(m: dict[str, float]) -> str:
        return ", ".join(f"{SHORT[d]} {v:,.0f}" for d, v in sorted(m.items(), key=lambda kv: -kv[1]))

    def best_side(res: dict[str, Any], key: str) -> str:
        vals = {d: v[key] for d, v in res["sides"].items() if v[key] is not None}
        return SHORT[min(vals, key=vals.__getitem__)]

    L: list[str] = []
    w = L.append
    w("# The paper's table, reproduced with plait's cost model")
    w("")
    w("*Generated by `.venv/bin/python bench/paper_table.py` (results: `bench/results/paper.json`; "
      f"{runtime_s:.0f} s on this 2-core machine). Do not edit by hand: change the script and rerun.*")
    w("")
    w("\"Efficient and Scalable Agentic AI with Heterogeneous Systems\" (Asgar, Nguyen, Katti, arXiv 2507.19635, 2025) "
      "ranks disaggregated *prefill-device::decode-device* pairs by tokens/s per dollar, normalized to H100::H100, "
      "for Llama 3 8B and 70B in FP16 and FP8, on a prefill-light (512 in / 4096 out) and a prefill-heavy "
      "(4096 in / 512 out) shape, under TTFT <= 250 ms and time per output token (TPOT) <= 20 ms, with the hardware "
      "and prices of its Table 5. Its conclusions, as this project was given them: **B200::Gaudi3 is the best pair**, "
      "and **H100::Gaudi3 is about as good as B200::B200**. This page redoes the ranking with plait's cost model "
      "(`planner/stage.py`, `planner/costmodel.py`) over the catalog extension `planner/catalog/paper.yaml`. "
      "Caveat: the stored copy of the paper has only its abstract, so Table 5 is taken as given in "
      "`planner/data/hardware/hardware.md` section 5 (unverified against the paper text), and the paper's own cost model "
      "and per-pair numbers could not be read; the comparison is with its stated conclusions only.")
    w("")
    w("## Headline (paper's $/hour, the primary basis)")
    w("")
    w("Tokens/s per dollar normalized to H100::H100 (paper-h100, the paper's 1979 TFLOP/s figure, on both sides). "
      "`H100d` is the same H100 with its dense figure (989.4).")
    w("")
    w("| workload | best pair (norm.) | cheapest prefill | cheapest decode | B200::Gaudi3 rank (norm.) | H100::Gaudi3 | "
      "B200::B200 | H100::Gaudi3 / B200::B200 | H100d::H100d |")
    w("|---|---|---|---|---|---|---|---|---|")
    for key, res in W.items():
        x = S[key]
        w(f"| Llama 3 {key} | {x['best']} ({x['best_normalized']:.2f}) | {best_side(res, 'prefill_usd_per_mtok')} | "
          f"{best_side(res, 'decode_usd_per_mtok')} | #{x['b200_gaudi3_rank']} ({x['b200_gaudi3']:.2f}) | "
          f"{x['h100_gaudi3']:.2f} | {x['b200_b200']:.2f} | {x['h100_gaudi3_over_b200_b200']:.2f} | "
          f"{x['h100dense_h100dense']:.2f} |")
    w("")
    n_pairs = len(DEVICES) ** 2
    ranks = [S[k]["b200_gaudi3_rank"] for k in W]
    ratios = [S[k]["h100_gaudi3_over_b200_b200"] for k in W]
    g3 = {k: next(b for b in W[k]["breakeven"] if b["side"] == "decode") for k in W}
    b2 = {k: next(b for b in W[k]["breakeven"] if b["side"] == "prefill") for k in W}
    tco = summ["tco"]
    light = [k for k in W if k.endswith("512/4096")]
    heavy = [k for k in W if k.endswith("4096/512")]

    def shares(keys: list[str]) -> list[float]:
        return [r["prefill_cost_share"] for k in keys for r in W[k]["pairs"]
                if r["feasible"] and "a40" not in r["prefill"]]

    def dec_rank(k: str, d: str) -> int:
        vals = {x: v["decode_usd_per_mtok"] for x, v in W[k]["sides"].items()
                if v["decode_usd_per_mtok"] is not None and x != "paper-h100-dense"}
        return sorted(vals, key=vals.__getitem__).index(d) + 1

    g3_ranks = sorted({dec_rank(k, "paper-gaudi3") for k in W})
    top5 = [W[k]["pairs"][0]["normalized"] / W[k]["pairs"][4]["normalized"] - 1 for k in light]
    all_better = all(S[k]["b200_gaudi3"] > 1 for k in W)
    w("## Agreement and disagreement with the paper")
    w("")
    w(f"- **B200::Gaudi3 best: not reproduced.** With the paper's own figures plait ranks it #{min(ranks)} to "
      f"#{max(ranks)} of {n_pairs} pairs, at {min(S[k]['b200_gaudi3'] for k in W):.2f}x to "
      f"{max(S[k]['b200_gaudi3'] for k in W):.2f}x H100::H100"
      + (" (better than H100::H100 in every workload, so the paper's direction, heterogeneous pairs beating "
         "H100::H100, holds)" if all_better else "") + ". The decode device decides the ranking (the prefill share "
      f"of the cost is {min(shares(light)):.1%}-{max(shares(light)):.0%} in the 512/4096 shape and "
      f"{min(shares(heavy)):.0%}-{max(shares(heavy)):.0%} in 4096/512, A40 prefill left out), and decode in plait's model is bandwidth-bound: "
      "a step reads the weights once plus every sequence's KV cache, so under the 20 ms bound the batch, and the "
      "tokens/s, grow with bandwidth and the cost with the $/hour. Table 5's GB/s per $/hour: "
      f"{order(bw_per_usd)}. MI300X and B200 beat Gaudi 3 on that ratio, and the larger absolute bandwidth also "
      "amortizes the weight read over a larger batch, so Gaudi 3 is the "
      + " or ".join(f"#{r}" for r in g3_ranks) + " cheapest decode device (of six chips) in every workload. The Gaudi 3 $/hour at which it would become the cheapest decode device: "
      + ", ".join(f"{k} ${g3[k]['breakeven_price']:.2f}" for k in W)
      + f" (paper: ${g3[next(iter(W))]['price']:.2f}).")
    w(f"- **B200 as the prefill device: not reproduced either, because of the H100 sparsity figure and Gaudi 3's "
      f"figure.** Prefill is compute-bound; Table 5's FP16 TFLOP/s per $/hour: {order(fl_per_usd)}; FP8 (vendor "
      f"dense, H100 row doubled to its sparsity figure): {order(f8_per_usd)}. The paper's H100 figure (1979) is FP16 "
      "*with 2:4 sparsity*: it doubles H100's prefill throughput (compare the H100 and H100d rows) and makes H100 "
      "a cheaper prefill device than B200. Gaudi 3's 1678 matches no vendor figure (Intel's matrix peak is 1835) and "
      "at $0.49/hour it is the cheapest FP16 prefill. The B200 $/hour at which it would be the cheapest prefill "
      "device: " + ", ".join(f"{k} ${b2[k]['breakeven_price']:.2f}" for k in W) + " (paper: $0.83). With the vendor "
      "dense figures instead (`vendor-flops` below) the best pairs become "
      + ", ".join(f"{summ['vendor-flops'][k]['best']} ({k})" for k in W if "fp8" in k)
      + " for FP8: B200 is then the cheapest FP8 prefill device, as the paper says, while Gaudi 3 (1835) stays "
      "the cheapest FP16 one.")
    w(f"- **H100::Gaudi3 about equal to B200::B200: only partly.** On the paper's $/hour H100::Gaudi3 / B200::B200 is "
      f"{min(ratios):.2f} to {max(ratios):.2f}: B200 is the better decode device. On plait's TCO basis (the paper's "
      "capex, financed over 4 years at 8%, plus the built-in TDPs at $0.40/kWh, which charges B200's 1000 W and "
      "Gaudi 3's 900 W) the ratio is "
      f"{min(tco[k]['h100_gaudi3_over_b200_b200'] for k in W):.2f} to {max(tco[k]['h100_gaudi3_over_b200_b200'] for k in W):.2f}, "
      "so the claim holds on a TCO basis rather than on the $/hour column (see the sensitivity table).")
    w("- **What plait finds instead:** the best pairs pair the cheapest FLOPs (Gaudi 3, or the H100 credited with "
      "sparsity) for prefill with the cheapest bandwidth (MI300X for 8B; B200 for 70B, where its 8000 GB/s "
      "amortizes the larger weight read over the largest batch) for decode. In the 512/4096 shape the top five pairs "
      f"lie within {max(top5):.0%} of each other, because prefill is a small share of the cost. H100 is the worst decode device among the HBM parts at these prices "
      "(3350 GB/s for $0.60).")
    w("- **Why else plait may differ from the paper:** (1) the efficiency factors (60% of peak FLOP/s, 66% of peak "
      "bandwidth) were fitted on one H200 with PyTorch and are carried to Gaudi 3 and MI300X through their specs: "
      "another vendor's software reaching a lower fraction of peak bandwidth would lower MI300X and Gaudi 3 "
      "decode, not raise Gaudi 3 over MI300X, unless Gaudi 3 reached a larger fraction than MI300X; (2) the $/hour "
      "column is a modelled rate far below any on-demand price (H100 $0.60 vs $2.69-12.29 listed), and the "
      "ranking moves with it (the plait-catalog row below uses median on-demand prices: MI300X at $1.71/hour "
      "then dominates); (3) the cross-chip KV transfer runs over an assumed 100 GbE per device, which costs the "
      "heterogeneous pairs TTFT budget that same-chip pairs (NVLink-class link) do not pay; (4) plait has no "
      "queueing delay in TTFT and sizes the fleet fluidly (fractional replicas), as a per-dollar ratio does.")
    w("")
    w("## Method")
    w("")
    w("For each workload (model, precision, prompt P, output D) and each prefill::decode pair of the seven Table 5 "
      "devices:")
    w("")
    w("- **Prefill side.** For each tensor-parallel degree (1, 2, 4, 8) and mode (eager, graph), the largest batch of "
      "prompts (binary search, up to 512) that fits without KV offload and meets **TTFT = prefill(batch) + KV "
      "transfer(batch) <= 250 ms**, from `stage_cost(OpSpec(op=\"prefill\", tokens=P), device, batch, mode, tp)`. "
      "The KV cache (`kv_transfer_bytes`) moves with `transfer_seconds`: over the scale-up link when both sides are "
      "the same chip (one server), else over the network (`network_gbps`, 12.5 GB/s per device, an assumption; each "
      "of the tp ranks sends its shard). Requests/s per replica = batch / max(prefill, transfer) (the transfer of "
      "one batch overlaps the next prefill). No queueing delay is added.")
    w("- **Decode side.** For each degree and mode, the largest batch (up to 4096) that fits at the final context "
      "P + D without offload and whose step at the mean context P + D/2 (continuous batching keeps sequences at "
      "every position) is **<= 20 ms**; tokens/s per replica = batch / step.")
    w("- **Pair.** A fleet sized fluidly to a request rate: $/hour per (output token/s) = (prefill $/hour / requests/s) "
      "/ D + decode $/hour / (tokens/s). Tokens/s per dollar-hour is its inverse; each side takes the (tp, mode, "
      "batch) with the lowest share (the two shares are independent except through the link). Normalized to "
      "paper-h100::paper-h100 of the same workload and basis. Output tokens are counted; counting prompt tokens "
      "too multiplies every pair of a workload by (P + D)/D and leaves the normalized table unchanged.")
    w("- **Price basis.** Primary: **the paper's $/hour** per device (Table 5; paper.yaml stores it as "
      "`cloud_usd_per_hour`, so `basis=\"cloud\"`), charged per device (tp devices per replica). Secondary: plait's "
      "TCO (`basis=\"tco\"`) of the paper's capex with the built-in TDPs.")
    w("- **Precision.** FP16 runs the paper's TFLOP/s column. FP8 models (`llama-3-8b-fp8`, `llama-3-70b-fp8` in "
      "paper.yaml, dtype fp8) read 1 byte per weight and KV value, and the cost model computes in the device's fp8 "
      "peak: the vendor's dense FP8 figure (B200 4500, MI300X 2614.9, Gaudi 3 1835, H100d 1978.9), 3958 for the "
      "paper-h100 row (its sparsity convention carried to FP8), and for A40 and A100, which have no FP8 units, "
      "weight-only FP8 (FP8 bytes at the FP16 figure, tagged `assumption`).")
    w("- **What the cost model adds**: launch overheads (eager/graph), tensor-parallel all-reduces over the "
      "scale-up link, the 90% usable-memory bound, and the efficiency factors of `planner/catalog/factors.yaml` "
      "(fitted on an H200, carried to every device).")
    w("")
    w("## Hardware (planner/catalog/paper.yaml)")
    w("")
    L.extend(device_table(catalog))
    w("")
    w("Table 5's TFLOP/s column mixes precisions (hardware.md section 5): A40's 75 is its TF32 figure (FP16 dense "
      "149.7), A100's 322 matches no vendor figure (312), Gaudi 3's 1678 none either (1835), H100's 1979 is FP16 "
      "with sparsity (dense 989.4); MI300X's 1307 and B200's 2250 are FP16 dense. All are used as given, except "
      "the H100d row. The `vendor-flops` sensitivity below replaces them with the vendor dense figures.")
    w("")
    w("## Sensitivity")
    w("")
    w("Each row reruns all eight workloads with one change. Best pair / B200::Gaudi3 rank / H100::Gaudi3 over "
      "B200::B200, per workload.")
    w("")
    for name, b in results.items():
        w(f"- `{name}`: {b['what']}")
    w("")
    w("| workload | " + " | ".join(results) + " |")
    w("|---|" + "---|" * len(results))
    for k in W:
        cells = []
        for name in results:
            x = summ[name][k]
            ratio = "-" if x["h100_gaudi3_over_b200_b200"] is None else f"{x['h100_gaudi3_over_b200_b200']:.2f}"
            cells.append(f"{x['best']} / #{x['b200_gaudi3_rank']} / {ratio}")
        w(f"| {k} | " + " | ".join(cells) + " |")
    w("")
    w("## Results per workload (paper's $/hour)")
    for key, res in W.items():
        w("")
        w(f"### Llama 3 {key}")
        w("")
        w(f"Model `{res['model']}`, {res['prompt']} prompt tokens, {res['output']} output tokens. Each device's best "
          "side on its own ($ per million output tokens; prefill with the cross-chip network transfer):")
        w("")
        L.extend(side_table(res))
        w("")
        w("Ranked pairs (top 12; every pair in `bench/results/paper.json`):")
        w("")
        L.extend(ranked_table(res, top=12))
        w("")
        w("All pairs, normalized (rows prefill, columns decode; `-` infeasible):")
        w("")
        L.extend(matrix(res))
    w("")
    w("## Assumptions the cost model reported")
    w("")
    notes = sorted({a for res in W.values() for a in res["assumptions"]})
    L.extend(f"- {a}" for a in notes)
    w("")
    return "\n".join(L)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--no-doc", action="store_true", help="do not rewrite docs/paper.md")
    args = ap.parse_args()
    t0 = time.perf_counter()
    catalog = load_catalog(extra=PAPER_YAML)
    results = run_all(catalog)
    runtime = time.perf_counter() - t0
    print_tables(results)
    data = {"paper": "arXiv 2507.19635 (Asgar, Nguyen, Katti, 2025), Table 5 hardware",
            "catalog_extension": str(PAPER_YAML.relative_to(ROOT)), "ttft_s": TTFT_S, "tpot_s": TPOT_S,
            "reference_pair": "::".join(BASE), "devices": list(DEVICES), "bases": {
                "paper": "the paper's $/hour per device (paper.yaml cloud_usd_per_hour), primary",
                "tco": "plait TCO: paper capex x CRF(4 y, 8%) / 8760 + built-in TDP x $0.40/kWh"},
            "metric": "output tokens/s per $/hour of a fluid prefill+decode fleet; normalized to the reference pair",
            "summary": summary(results),
            # every pair for the two price bases; the sensitivity runs keep their summary only
            "results": {k: v for k, v in results.items() if k in BASES},
            "runtime_s": round(runtime, 2), "machine": platform.processor() or platform.machine()}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(data, indent=1) + "\n")
    print(f"\nwrote {RESULTS.relative_to(ROOT)}; {runtime:.1f} s for "
          f"{sum(b['cost_model_calls'] for b in results.values())} cost-model calls")
    if not args.no_doc:
        DOC.write_text(render_doc(results, catalog, data["summary"], runtime))
        print(f"wrote {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
