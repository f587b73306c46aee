"""The user catalog: `$PLAIT_CONFIG_DIR/catalog.yaml` (default `~/.config/plait/catalog.yaml`).

`load_catalog()` lays it over the built-in catalog when it exists (before any `--catalog` file); `plait
calibrate --cpu` writes its `local` device there, merged into what the file already holds.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import yaml

from plait.planner.validation import yaml_line

CONFIG_ENV = "PLAIT_CONFIG_DIR"
FILE_NAME = "catalog.yaml"
HEADER = ("# plait's user catalog: devices, models and defaults laid over the built-in catalog (docs/costmodel.md).\n"
          "# `plait calibrate --cpu` rewrites devices.local; other entries are kept as they are.\n")


def config_dir() -> Path:
    """$PLAIT_CONFIG_DIR, else $XDG_CONFIG_HOME/plait, else ~/.config/plait."""
    if given := os.environ.get(CONFIG_ENV):
        return Path(given).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "plait"


def user_catalog_path() -> Path:
    return config_dir() / FILE_NAME


def existing_data(path: Path) -> Any:
    """The user catalog's parsed YAML (None when absent). Raises CatalogError when it is not YAML or not a
    catalog mapping, so a command that merges into it stops before doing any work."""
    from plait.planner.catalog import CatalogError

    if not path.is_file():
        return None
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        line = yaml_line(err)
        at = f" (line {line})" if line is not None else ""
        raise CatalogError(f"user catalog {path} is not valid YAML{at}, so nothing can be merged into it; nothing "
                           "was written.\nTo fix: correct the file, or move it away and run the command again.") from None
    if data is not None and (not isinstance(data, dict) or not isinstance(data.get("devices") or {}, dict)):
        raise CatalogError(f"user catalog {path} is not a catalog mapping (`devices:`, `models:`, `defaults:`), so "
                           "nothing can be merged into it; nothing was written.\nTo fix: correct the file, or move "
                           "it away and run the command again.")
    return data


def save_entry(path: Path, data: Any, section: str, name: str, row: dict[str, Any]) -> None:
    """Write `data` (existing_data's) with `section.name` set to `row`; every other entry kept.

    The merged text must load as a catalog before it replaces the file; the previous file is kept as
    catalog.yaml.bak, and the write is atomic (a crash leaves the old file)."""
    from plait.planner.catalog import _builtin, _layer

    rows = dict((data or {}).get(section) or {})
    rows[name] = row
    text = HEADER + yaml.safe_dump({**(data or {}), section: rows}, sort_keys=False, width=120, allow_unicode=True)
    _layer(_builtin(), text, str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_file():
        shutil.copyfile(path, path.with_name(path.name + ".bak"))
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
