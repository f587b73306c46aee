"""bench/gpu_check.sh runs the engine with nothing but torch (its CPU smoke run, with plait's other
dependencies made unimportable), writes the JSON schema the GPU run writes, and bench/gpu_compare.py sets a
saved sample beside the cost model's h200 predictions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "bench/results/gpu_check_cpu_smoke_sample.json"
# A GPU machine has torch and nothing else: every other package the checkout could reach is refused.
ONLY_TORCH = '''
import importlib.machinery, runpy, sys
BLOCKED = ("pydantic", "xdsl", "numpy", "tokenizers", "safetensors", "llguidance", "networkx", "scipy")
class Refuse:
    def create_module(self, spec):
        raise ModuleNotFoundError(f"not on a GPU machine: {spec.name}", name=spec.name)
    def exec_module(self, module):
        raise ModuleNotFoundError(module.__name__)
class OnlyTorch:
    def find_spec(self, name, path=None, target=None):
        return importlib.machinery.ModuleSpec(name, Refuse()) if name.split(".")[0] in BLOCKED else None
sys.meta_path.insert(0, OnlyTorch())
sys.argv = ["bench/gpu_check.py", "--cpu-smoke"]
runpy.run_path("bench/gpu_check.py", run_name="__main__")
layers = sorted(m for m in sys.modules if m.startswith(("plait.sdk", "plait.ir", "plait.planner", "plait.cli")))
print("LOADED", layers)
'''


def _keys(d: dict) -> dict:
    return {k: _keys(v) if isinstance(v, dict) else None for k, v in d.items()}


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str]:
    out = tmp_path_factory.mktemp("gpu")
    env = {**os.environ, "OUT": str(out), "PYTHONWARNINGS": "ignore"}
    done = subprocess.run([sys.executable, "-c", ONLY_TORCH], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((out / "gpu_check.json").read_text()), done.stdout


def test_the_smoke_run_needs_only_torch_and_writes_every_row(smoke: tuple[dict, str]) -> None:
    result, stdout = smoke
    assert "LOADED []" in stdout                        # no other plait layer was imported
    assert result["format"] == "plait-gpu-check/1" and result["smoke"] is True
    assert "NOT a GPU measurement" in result["note"] and result["model"]["random_weights"] is True
    assert [r["tokens"] for r in result["prefill"]] == [32, 64]
    assert [(r["batch"], r["mode"]) for r in result["decode"]] == [(1, "eager"), (1, "static"), (4, "eager"),
                                                                    (4, "static")]
    for r in result["decode"]:
        assert len(r["ms"]) == r["steps"] and r["ms_median"] > 0
        assert (r["graph_steps"] > 0) == (r["mode"] == "static")   # static rows ran the graphs' bucket path
    assert result["skipped"] == []


def test_the_committed_sample_has_the_schema_the_script_writes(smoke: tuple[dict, str]) -> None:
    sample = json.loads(SAMPLE.read_text())
    assert sample["smoke"] is True and "NOT a GPU measurement" in sample["note"]
    assert _keys(sample) == _keys(smoke[0])
    assert _keys(sample["decode"][0]) == _keys(smoke[0]["decode"][0])


def test_gpu_compare_sets_the_sample_beside_the_h200_predictions(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import gpu_compare
    finally:
        sys.path.remove(str(ROOT / "bench"))
    result = gpu_compare.main([str(SAMPLE), "--out", str(tmp_path / "cmp.json")])
    printed = capsys.readouterr().out
    assert printed.startswith("CPU SMOKE SAMPLE") and "predicted: llama-3.1-8b on h200" in printed
    assert len(result["rows"]) == 6 and all(r["predicted_ms"] > 0 and r["ratio"] > 0 for r in result["rows"])
    assert json.loads((tmp_path / "cmp.json").read_text())["predicted_for"] == {"device": "h200",
                                                                                "model": "llama-3.1-8b"}
    with pytest.raises(SystemExit, match="not 'plait-gpu-check/1'"):
        gpu_compare.compare({"format": "other"})
