"""Cost-model accuracy against the H200 calibration file: a table, and bench/results/cost_accuracy.json.

Uses the checked-in factors (planner/catalog/factors.yaml). The llama-3.1-8b rows were not fitted; the
headline is their median absolute error (target <= 20%), with the maximum error per regime.
Run: `.venv/bin/python bench/cost_accuracy.py`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from plait.planner.calibration import gpu_rows
from plait.planner.catalog import load_catalog
from plait.planner.factors import builtin_factors
from plait.planner.fit import predict
from plait.planner.fitreport import summary

OUT = Path(__file__).resolve().parent / "results" / "cost_accuracy.json"


def main() -> None:
    cat = load_catalog()
    f = builtin_factors().gpu
    res = predict([r for r in gpu_rows(cat) if r.split != "link"], cat.device("h200"), f)
    order = {"predict": 0, "fit": 1, "micro": 2, "other": 3}
    res.sort(key=lambda r: (order[r.row.split], r.regime, r.row.label))
    print(f"{'split':<8} {'regime':<16} {'row':<44} {'measured ms':>12} {'predicted ms':>13} {'error':>8}")
    for r in res:
        print(f"{r.row.split:<8} {r.regime:<16} {r.row.label:<44} {r.row.seconds * 1e3:>12.4f} "
              f"{r.predicted * 1e3:>13.4f} {r.error:>+8.1%}")
    summaries = {split: summary(res, split) for split in ("predict", "fit", "micro", "other")}
    for split, s in summaries.items():
        per = ", ".join(f"{k[14:-1]} {v:.1%}" for k, v in s.items() if k.startswith("max") and not math.isnan(v))
        print(f"{split:<8} {int(s['rows'])} rows: median |error| {s['median_abs_error']:.1%}; max |error| {per}")
    target = summaries["predict"]["median_abs_error"] <= 0.20
    print(f"llama-3.1-8b (held out) median |error| {summaries['predict']['median_abs_error']:.1%} "
          f"(target <= 20%: {'met' if target else 'NOT met'})")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({
        "command": ".venv/bin/python bench/cost_accuracy.py",
        "factors": f.model_dump(),
        "summary": {k: {kk: (None if isinstance(vv, float) and math.isnan(vv) else vv) for kk, vv in v.items()}
                    for k, v in summaries.items()},
        "target_met": target,
        "rows": [{"split": r.row.split, "regime": r.regime, "row": r.row.label, "measured_s": r.row.seconds,
                  "predicted_s": r.predicted, "error": r.error} for r in res],
    }, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
