"""The built-in device and model catalogs (YAML data) loaded into pydantic rows, plus pure lookups.

    >>> cat = load_catalog()
    >>> cat.device("h200").mem_gb.value
    141.0
    >>> cat.model("bert-base-768").name        # aliases resolve to the catalog key
    'bge-base'
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from plait.planner.catalog.schema import (
    DTYPE_BYTES,
    SCALE_SEP,
    ArchSpec,
    DeviceSpec,
    Figure,
    ModelSpec,
    ScaleSpec,
    Source,
    StackSpec,
    VocoderSpec,
)
from plait.sdk.errors import PlaitError

__all__ = ["DTYPE_BYTES", "LOCAL_DEVICE", "SCALE_SEP", "ArchSpec", "Catalog", "CatalogError", "DeviceSpec", "Figure", "ModelSpec",
           "ScaleSpec", "Source", "StackSpec", "VocoderSpec", "did_you_mean", "load_catalog"]

TOP_KEYS = ("defaults", "devices", "models")
LOCAL_DEVICE = "local"
"""This machine's CPU, as `plait calibrate --cpu` measured it (in the user catalog)."""
_ROW_CLASSES = (DeviceSpec, ModelSpec, StackSpec, VocoderSpec, Figure, Source, ArchSpec, ScaleSpec)


class CatalogError(PlaitError, ValueError):
    """A catalog file is broken, or a lookup named a device or model the catalog does not have."""


def did_you_mean(name: str, choices: list[str]) -> str:
    """' Did you mean: a, b?' for the closest choices, or ''."""
    close = difflib.get_close_matches(name, choices, n=3, cutoff=0.5)
    return f" Did you mean: {', '.join(close)}?" if close else ""


@dataclass(frozen=True)
class Catalog:
    """Devices, models and the shared default figures (network, host cores, usable memory)."""

    devices: dict[str, DeviceSpec]
    models: dict[str, ModelSpec]
    defaults: dict[str, Figure]
    files: tuple[str, ...] = ()
    _aliases: dict[str, str] = field(default_factory=dict, repr=False)

    def device(self, name: str) -> DeviceSpec:
        """The device called `name` (case-insensitive). Raises CatalogError with suggestions if unknown."""
        key = name.lower()
        if key == LOCAL_DEVICE and key not in self.devices:
            from plait.planner.catalog.user import user_catalog_path

            raise CatalogError(f"no device {LOCAL_DEVICE!r}: this machine has not been measured.\nTo fix: run "
                               f"`plait calibrate --cpu` (about 10 s); it writes the {LOCAL_DEVICE!r} device to "
                               f"{user_catalog_path()}.")
        if key not in self.devices:
            raise CatalogError(f"unknown device {name!r}.{did_you_mean(key, sorted(self.devices))}\n"
                               f"To fix: use one of {', '.join(sorted(self.devices))}, or add it to a catalog "
                               "YAML passed as load_catalog(extra=...).")
        return self.devices[key]

    def model(self, name: str) -> ModelSpec:
        """The model called `name` or one of its aliases, or a scaled size of a dense LLM (`llama-3.1-8b@tiny`).

        Raises CatalogError with suggestions if the model is unknown, or names the scales it has if the scale is.
        """
        base, sep, scale = name.partition(SCALE_SEP)
        if sep:
            spec = self.model(base)
            if not spec.scales:
                raise CatalogError(f"model {spec.name!r} has no scaled sizes (only dense LLMs have them), so "
                                   f"{name!r} names nothing.\nTo fix: use {spec.name!r} at full size, or a dense "
                                   "LLM's scale such as llama-3.1-8b@tiny (`plait catalog models` lists them).")
            if scale.lower() not in spec.scales:
                have = ", ".join(f"{spec.name}{SCALE_SEP}{s}" for s in spec.scales)
                raise CatalogError(f"model {spec.name!r} has no scale {scale!r}.{did_you_mean(scale, list(spec.scales))}"
                                   f"\nTo fix: use one of its scales: {have}.")
            return spec.scaled(scale.lower())
        key = self._aliases.get(name.lower(), name.lower())
        if key not in self.models:
            names = sorted(self.models) + sorted(self._aliases)
            raise CatalogError(f"unknown model {name!r}.{did_you_mean(key, names)}\n"
                               f"To fix: use one of {', '.join(sorted(self.models))}, or add it to a catalog YAML.")
        return self.models[key]

    def default(self, name: str) -> Figure:
        return self.defaults[name]


def _location(err: Any, section: str) -> str:
    return ".".join([section, *(str(p) for p in err["loc"])])


def _parse(data: Any, where: str) -> tuple[dict[str, DeviceSpec], dict[str, ModelSpec], dict[str, Figure]]:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise CatalogError(f"catalog {where} must be a mapping with keys {', '.join(TOP_KEYS)}, "
                           f"got {type(data).__name__}.\nTo fix: start the file with `devices:` or `models:`.")
    for key in data:
        if key not in TOP_KEYS:
            raise CatalogError(f"catalog {where}: unknown top-level key {key!r}.{did_you_mean(str(key), list(TOP_KEYS))}"
                               f"\nTo fix: use only {', '.join(TOP_KEYS)}.")
    devices: dict[str, DeviceSpec] = {}
    models: dict[str, ModelSpec] = {}
    defaults: dict[str, Figure] = {}
    tables: tuple[tuple[str, Any, dict[str, Any]], ...] = (
        ("devices", DeviceSpec, devices), ("models", ModelSpec, models), ("defaults", Figure, defaults))
    for section, cls, out in tables:
        rows = data.get(section) or {}
        if not isinstance(rows, dict):
            raise CatalogError(f"catalog {where}: `{section}` must map names to entries.\n"
                               f"To fix: write `{section}:` then `  my-name: {{...}}` lines.")
        for name, row in rows.items():
            if not isinstance(row, dict):
                raise CatalogError(f"catalog {where}: {section}.{name} must be a mapping, got {row!r}.")
            body = dict(row) if cls is Figure else {**row, "name": str(name).lower()}
            try:
                out[str(name).lower()] = cls.model_validate(body)
            except ValidationError as exc:
                first = exc.errors()[0]
                loc = _location(first, f"{section}.{name}")
                hint = ""
                if first["type"] == "extra_forbidden":
                    fields = sorted({f for c in _ROW_CLASSES for f in c.model_fields})
                    hint = did_you_mean(str(first["loc"][-1]), fields)
                raise CatalogError(f"catalog {where}: {loc}: {first['msg']}.{hint}\n"
                                   f"To fix: correct `{loc}` ({len(exc.errors())} problem(s) in this entry).") from None
    return devices, models, defaults


def _read_yaml(text: str, where: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise CatalogError(f"catalog {where} is not valid YAML:{at}: {problem}.\n"
                           "To fix: check indentation and quoting there.") from None


@lru_cache(maxsize=1)
def _builtin() -> Catalog:
    base = resources.files("plait.planner.catalog")
    devices, models, defaults = {}, {}, {}
    for fname in ("devices.yaml", "models.yaml"):
        d, m, f = _parse(_read_yaml(base.joinpath(fname).read_text(), fname), fname)
        devices.update(d)
        models.update(m)
        defaults.update(f)
    return _build(devices, models, defaults, ("devices.yaml", "models.yaml"))


def _build(devices: dict[str, DeviceSpec], models: dict[str, ModelSpec], defaults: dict[str, Figure],
           files: tuple[str, ...]) -> Catalog:
    aliases = {a.lower(): name for name, m in models.items() for a in m.aliases}
    return Catalog(devices=devices, models=models, defaults=defaults, files=files, _aliases=aliases)


def load_catalog(extra: str | Path | None = None) -> Catalog:
    """The built-in catalog, then the user catalog (if it exists), then a YAML file given for this call.

    Args:
        extra: None, or a path to a YAML file with any of the top-level keys `devices`, `models`, `defaults`,
            in the built-in files' format. An entry with a name already loaded is laid over that row (the keys
            it gives replace the earlier ones, so a price override is one key); a new name adds a row.

    The user catalog is `$PLAIT_CONFIG_DIR/catalog.yaml` (default `~/.config/plait/catalog.yaml`), where
    `plait calibrate --cpu` writes the `local` device; it is read in the same format.

    Returns:
        A Catalog. Raises CatalogError naming the file and the key when the YAML is broken or has an
        unknown field.
    """
    from plait.planner.catalog.user import user_catalog_path

    base = _builtin()
    user = user_catalog_path()
    if user.is_file():
        stat = user.stat()
        base = _with_user(str(user), stat.st_mtime_ns, stat.st_size)
    if extra is None:
        return base
    path = Path(extra)
    if not path.is_file():
        raise CatalogError(f"catalog file {str(path)!r} does not exist.\nTo fix: pass the path of a YAML file.")
    return _layer(base, path.read_text(), str(path))


def _layer(base: Catalog, text: str, where: str) -> Catalog:
    data = _over_builtin(_read_yaml(text, where), base)
    d, m, f = _parse(data, where)
    return _build({**base.devices, **d}, {**base.models, **m}, {**base.defaults, **f}, (*base.files, where))


@lru_cache(maxsize=4)
def _with_user(path: str, mtime_ns: int, size: int) -> Catalog:
    """The built-in catalog with the user catalog laid over it; cached while the file is unchanged (the cost
    model asks for the catalog on every estimate)."""
    try:
        return _layer(_builtin(), Path(path).read_text(), path)
    except CatalogError as err:
        raise CatalogError(f"{err}\nThis is your user catalog, which every plait command reads: correct it, or "
                           f"move it away (`plait calibrate --cpu` writes a new one with the `local` device), or "
                           f"point PLAIT_CONFIG_DIR at another folder.") from None


def _over_builtin(data: Any, base: Catalog) -> Any:
    """Lay a user's entries for devices and models already loaded over their rows, key by key.

    `devices: {mi300x: {cloud_usd_per_hour: {...}}}` overrides one price and keeps every other figure. A price
    given without `cloud_quotes` drops the built-in quotes, so reports show the user's figure and its source
    rather than the built-in basis.
    """
    if not isinstance(data, dict):
        return data
    out = dict(data)
    for section, rows in (("devices", base.devices), ("models", base.models)):
        given = data.get(section)
        if not isinstance(given, dict):
            continue
        merged: dict[Any, Any] = {}
        for name, row in given.items():
            builtin = rows.get(str(name).lower())
            if builtin is None or not isinstance(row, dict):
                merged[name] = row
                continue
            base_row = builtin.model_dump(exclude={"name"}, exclude_none=True)
            if section == "devices" and "cloud_usd_per_hour" in row and "cloud_quotes" not in row:
                base_row.pop("cloud_quotes", None)
            merged[name] = {**base_row, **row}
        out[section] = merged
    return out
