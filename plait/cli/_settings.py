"""`plait.yaml` beside an agent file: the settings of `plait run`'s flags, so a project need not repeat them.

    weights: {llama-3.1-8b: ckpt/llama}      # MODEL: DIR (relative paths: from the agent file's folder)
    index: {wiki: out/wiki}                  # NAME: DIR
    endpoints: {llama-3.1-8b: http://10.0.0.5:8000/v1}   # MODEL: URL of the plan's remote pool of MODEL
    max_replicas: 1
    scale: tiny
    max_tokens: 64
    tool_latency: declared
    follow_figures: true

Flags given on the command line override the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from plait.planner.validation import yaml_line
from plait.sdk.errors import PlaitError

FILE_NAME = "plait.yaml"


class RunSettings(BaseModel):
    """The keys plait.yaml may hold; each is a `plait run` flag of the same name."""

    model_config = ConfigDict(extra="forbid")

    weights: dict[str, str] = Field(default_factory=dict, description="MODEL: DIR of a local checkpoint")
    index: dict[str, str] = Field(default_factory=dict, description="NAME: DIR of `plait index build`'s output")
    endpoints: dict[str, str] = Field(default_factory=dict, description=(
        "MODEL: URL at which to reach the plan's remote pool of MODEL (declared in the inventory's remote list, "
        "planned with its figures): the same server behind another address"))
    max_replicas: int | None = Field(default=None, ge=1, description="at most this many replicas of a pool here")
    scale: Literal["tiny", "small"] | None = Field(default=None, description="catalog scale of the dense LLMs")
    max_tokens: int | None = Field(default=None, ge=1, description="cap on every decode, tokens")
    tool_latency: Literal["real", "declared"] | None = None
    follow_figures: bool | None = None

    @field_validator("endpoints")
    @classmethod
    def _urls(cls, value: dict[str, str]) -> dict[str, str]:
        for model, url in value.items():
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"endpoint of {model!r} must be an http(s):// URL, got {url!r}")
        return value


def load_settings(agent_file: Path) -> tuple[RunSettings, Path | None]:
    """The plait.yaml beside `agent_file` (empty settings when there is none), with relative paths resolved
    against the agent file's folder. Raises PlaitError naming the file, the key and the fix."""
    path = agent_file.resolve().parent / FILE_NAME
    if not path.is_file():
        return RunSettings(), None
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        line = yaml_line(err)
        at = f":{line}" if line is not None else ""
        raise PlaitError(f"{path}{at} is not valid YAML\n  To fix: correct it (keys: "
                         f"{', '.join(RunSettings.model_fields)}).") from None
    if data is not None and not isinstance(data, dict):
        raise PlaitError(f"{path} must be a mapping of settings\n  To fix: write `key: value` lines (keys: "
                         f"{', '.join(RunSettings.model_fields)}).")
    try:
        settings = RunSettings.model_validate(data or {})
    except ValidationError as err:
        first = err.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        if first["type"] == "extra_forbidden":
            from plait.planner.catalog import did_you_mean

            raise PlaitError(f"{path}: unknown key {key!r}.{did_you_mean(key, list(RunSettings.model_fields))}\n"
                             f"  To fix: use only {', '.join(RunSettings.model_fields)}.") from None
        raise PlaitError(f"{path}: {key}: {first['msg']}\n  To fix: correct `{key}` "
                         f"({RunSettings.model_fields[str(first['loc'][0])].description or 'see docs/runtime.md'}).") from None
    folder = path.parent
    return settings.model_copy(update={
        "weights": {k: str((folder / Path(v).expanduser()).resolve()) for k, v in settings.weights.items()},
        "index": {k: str((folder / Path(v).expanduser()).resolve()) for k, v in settings.index.items()}}), path
