"""Every test (and every `plait` process a test starts) reads a user catalog of its own, never the developer's
~/.config/plait: PLAIT_CONFIG_DIR points at a session folder whose `local` device is the reference machine's
checked-in timings (planner/data/cpu_timings.jsonl), so `plait run` without --plan does not calibrate first."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

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
