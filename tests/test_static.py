"""Static checks run with the suite: ruff, the one-way layer contract (import-linter) and mypy."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from _static_checks import BIN, ROOT, lay_out_wheel, mypy_result
from _static_checks import run as _run


@pytest.fixture(scope="module")
def wheel_layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package as the wheel lays it out (layers under plait/), which import-linter and mypy walk."""
    return lay_out_wheel(tmp_path_factory.mktemp("layout"))


def test_ruff_is_clean() -> None:
    done = _run([str(BIN / "ruff"), "check", "."], ROOT)
    assert done.returncode == 0, done.stdout + done.stderr


def test_layers_flow_one_way(wheel_layout: Path) -> None:
    done = _run([str(BIN / "lint-imports"), "--no-cache"], wheel_layout, env_path=wheel_layout)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 kept, 0 broken" in done.stdout   # layers; simulator vs analytic placement; the engine's imports


def test_mypy_is_clean(wheel_layout: Path) -> None:
    done = mypy_result(wheel_layout)   # started after collection when this test was collected (tests/conftest.py)
    assert done.returncode == 0, done.stdout + done.stderr


def test_import_plait_loads_the_sdk_only() -> None:
    code = ("import sys, plait; heavy = [m for m in sys.modules if m.split('.')[0] in "
            "('torch', 'xdsl', 'scipy', 'matplotlib') or m.startswith(('plait.ir', 'plait.planner', "
            "'plait.codegen', 'plait.scheduler', 'plait.cluster', 'plait.cli'))]; print(heavy)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr
