"""The static checks' helpers (tests/test_static.py), and mypy started early: mypy over the whole package takes
about 30 s of one core, so once pytest has collected test_mypy_is_clean, tests/conftest.py starts it in the
background (on the second core, beside the first tests) and the test waits for its verdict."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
LAYER_FOLDERS = {"ir": "ir", "planner": "planner", "codegen": "codegen",
                 "scheduler": "scheduler", "cluster": "cluster"}
TIMEOUT_S = 240
MYPY = [sys.executable, "-m", "mypy", "--no-incremental", "-p", "plait"]
MYPY_TEST = "tests/test_static.py::test_mypy_is_clean"


def lay_out_wheel(site: Path) -> Path:
    """The package as the wheel lays it out (layers under plait/), which import-linter and mypy walk."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "plait", site / "plait", ignore=ignore)
    for folder, sub in LAYER_FOLDERS.items():
        shutil.copytree(ROOT / folder, site / "plait" / sub, ignore=ignore)
    shutil.copy(ROOT / "pyproject.toml", site / "pyproject.toml")
    return site


def _env(env_path: Path | None) -> dict[str, str]:
    env = {"PATH": str(BIN) + ":/usr/bin:/bin"}
    if env_path is not None:
        env["PYTHONPATH"] = str(env_path)
    return env


def run(cmd: list[str], cwd: Path, env_path: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, env=_env(env_path), capture_output=True, text=True, timeout=TIMEOUT_S)


_background: dict[str, tuple[subprocess.Popen[str], Path]] = {}


def start_mypy() -> None:
    """Start mypy on a wheel layout of its own (a snapshot of the sources as collected)."""
    site = lay_out_wheel(Path(tempfile.mkdtemp(prefix="plait-mypy-")))
    proc = subprocess.Popen(MYPY, cwd=site, env=_env(site), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    _background["mypy"] = (proc, site)


def mypy_result(site: Path) -> subprocess.CompletedProcess[str]:
    """mypy's verdict: the background run's when one was started (waiting at most TIMEOUT_S for it), else mypy
    run now on `site`."""
    if "mypy" not in _background:
        return run(MYPY, site, env_path=site)
    proc, _ = _background["mypy"]
    try:
        out, err = proc.communicate(timeout=TIMEOUT_S)
    finally:
        stop_mypy()
    return subprocess.CompletedProcess(MYPY, proc.returncode, out, err)


def stop_mypy() -> None:
    """Kill the background mypy if it still runs (the session ended first) and remove its layout."""
    if "mypy" in _background:
        proc, site = _background.pop("mypy")
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        shutil.rmtree(site, ignore_errors=True)
