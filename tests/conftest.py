"""Every test (and every `plait` process a test starts) reads a user catalog of its own, never the developer's
~/.config/plait: PLAIT_CONFIG_DIR points at a session folder whose `local` device is the reference machine's
checked-in timings (planner/data/cpu_timings.jsonl), so `plait run` without --plan does not calibrate first.

When test_static's mypy check is collected, mypy starts in the background right after collection
(tests/_static_checks.py): 30 s of one core that then overlap the first tests instead of adding to the run."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

CONFIG = Path(tempfile.mkdtemp(prefix="plait-config-"))
os.environ["PLAIT_CONFIG_DIR"] = str(CONFIG)


def _reference_local() -> None:
    from plait.planner.calibration import CPU_FILE, local_device, read_jsonl
    from plait.planner.catalog import LOCAL_DEVICE
    from plait.planner.catalog.user import save_entry, user_catalog_path

    rows = read_jsonl("plait.planner.data", CPU_FILE)
    env = next(r for r in rows if r["section"] == "env")
    env.setdefault("mem_bytes", 16 * 10**9)   # the reference file predates these two fields
    env.setdefault("vendor", "amd")
    device = local_device(rows, f"planner/data/{CPU_FILE} (the reference machine, for the tests)")
    save_entry(user_catalog_path(), None, "devices", LOCAL_DEVICE,
               device.model_dump(mode="json", exclude={"name"}, exclude_none=True))


_reference_local()


def pytest_collection_finish(session: pytest.Session) -> None:
    from _static_checks import MYPY_TEST, start_mypy

    if not session.config.option.collectonly and any(item.nodeid == MYPY_TEST for item in session.items):
        start_mypy()


def pytest_sessionfinish(session: pytest.Session) -> None:
    from _static_checks import stop_mypy

    stop_mypy()
