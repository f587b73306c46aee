"""`plait cost`: JSON lines in, JSON lines with seconds out; the fit report; bad input exits 2 without a traceback."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from plait.cli import app

RUN = CliRunner()
LINES = [
    {"device": "h200", "op": "prefill", "model": "llama-3.1-8b", "batch": 1, "tokens": 2048, "mode": "eager"},
    {"device": "h200", "op": "decode", "model": "qwen2.5-32b", "batch": 16, "ctx": 2048, "mode": "graph"},
    {"device": "genoa-64", "op": "ann_search", "n": 1000000, "dim": 384, "batch": 8},
    {"device": "l4", "op": "vocode", "model": "parler-tts-mini", "audio_seconds": 4},
]


def test_jsonl_file(tmp_path: Path) -> None:
    f = tmp_path / "ops.jsonl"
    f.write_text("\n".join(json.dumps(x) for x in LINES) + "\n")
    done = RUN.invoke(app, ["cost", "--jsonl", str(f)])
    assert done.exit_code == 0, done.output
    out = [json.loads(line) for line in done.output.splitlines()]
    assert len(out) == len(LINES)
    for given, got in zip(LINES, out, strict=True):
        assert {k: v for k, v in got.items() if k != "seconds"} == given
        assert got["seconds"] > 0
    assert 0.03 < out[0]["seconds"] < 0.08      # 8B prefill of 2048 tokens on an H200: ~55 ms measured


def test_jsonl_stdin() -> None:
    done = RUN.invoke(app, ["cost", "--jsonl", "-"], input=json.dumps(LINES[1]) + "\n")
    assert done.exit_code == 0 and json.loads(done.output)["seconds"] > 0


def test_unknown_device_names_the_line_and_suggests(tmp_path: Path) -> None:
    f = tmp_path / "bad.jsonl"
    f.write_text(json.dumps(LINES[0]) + "\n" + json.dumps({**LINES[1], "device": "h20"}) + "\n")
    done = RUN.invoke(app, ["cost", "--jsonl", str(f)])
    assert done.exit_code == 2
    assert "line 2: unknown device 'h20'. Did you mean: h200" in done.output
    assert "Traceback" not in done.output


def test_bad_op_model_json_and_field() -> None:
    for text, expect in [('{"device": "h200", "op": "decod", "model": "llama-3.1-8b"}', "Did you mean: decode"),
                         ('{"device": "h200", "op": "decode", "model": "llama-8b"}', "unknown model 'llama-8b'"),
                         ('{"device": "h200", "op": "decode", "modle": "x"}', "Did you mean: mode, model"),
                         ('{"device": "h200", "op": "decode", "model": "llama-3.1-8b", "batch": 0}', "batch must be"),
                         ("{not json", "not valid JSON")]:
        done = RUN.invoke(app, ["cost", "--jsonl", "-"], input=text + "\n")
        assert done.exit_code == 2, (text, done.output)
        assert expect in done.output and "<stdin> line 1" in done.output
        assert "Traceback" not in done.output


def test_no_option_is_an_error() -> None:
    done = RUN.invoke(app, ["cost"])
    assert done.exit_code == 2 and "--fit-report" in done.output


def test_fit_report_shows_regimes_and_cpu_fit() -> None:
    done = RUN.invoke(app, ["cost", "--fit-report"])
    assert done.exit_code == 0, done.output
    for text in ("compute_eff", "-- launch-bound", "-- compute-bound", "-- bandwidth-bound",
                 "decode llama-3.1-8b b=32 ctx=1024 graph", "CPU class", "predict  15 rows"):
        assert text in done.output


def test_answers_for_every_catalog_device_and_model() -> None:
    from plait.planner.catalog import load_catalog

    catalog = load_catalog()
    lines = []
    for device in sorted(catalog.devices):
        for name, model in sorted(catalog.models.items()):
            if model.decoder is not None:
                lines.append({"device": device, "op": "decode", "model": name, "batch": 4, "ctx": 1024,
                              "mode": "graph"})
                lines.append({"device": device, "op": "prefill", "model": name, "batch": 1, "tokens": 512,
                              "mode": "eager"})
            else:
                lines.append({"device": device, "op": "encode", "model": name, "batch": 8, "tokens": 128})
    done = RUN.invoke(app, ["cost", "--jsonl", "-"], input="\n".join(json.dumps(x) for x in lines) + "\n")
    assert done.exit_code == 0, done.output
    out = [json.loads(line) for line in done.output.splitlines()]
    assert len(out) == len(lines) and len({o["device"] for o in out}) >= 15
    assert all(o["seconds"] > 0 for o in out)
    # a 70B model cannot fit one 16 GB T4: the answer says so instead of printing a silent time
    t4_70b = next(o for o in out if o["device"] == "t4" and o["model"] == "llama-3.1-70b")
    assert t4_70b.get("fits") is False


def test_fit_report_shows_signed_residuals_and_measured_factors() -> None:
    done = RUN.invoke(app, ["cost", "--fit-report"])
    assert done.exit_code == 0, done.output
    lines = [line.rstrip() for line in done.output.splitlines()]
    for pinned in (
        "  llama-3.2-1b (1.24 B params, fit)                    launch-bound      10          +1.7%            6.3%",
        "  llama-3.2-1b (1.24 B params, fit)                    compute-bound      2          +0.2%            0.3%",
        "  llama-3.2-1b (1.24 B params, fit)                    bandwidth-bound    2          -1.7%            2.8%",
        "  llama-3.1-8b (8.03 B params, held out)               compute-bound      3          -1.0%            1.1%",
        "  llama-3.1-8b (8.03 B params, held out)               bandwidth-bound    7          -4.3%            4.3%",
        "  bound: every regime of the fitted rows within 5% (signed median); worst 1.7%: met",
    ):
        assert pinned in lines, pinned
    a40 = next(line for line in lines if line.startswith("  a40    "))
    assert "0.814 measured" in a40 and "0.7407 carried" in a40 and "0.4909 carried" in a40
    assert any(line.startswith("  h200 ") and "0.9025 fitted" in line for line in lines)
    assert any("a40 bw_eff: microsoft/vidur operator profiles" in line for line in lines)
