"""A remote pool: an OpenAI-compatible endpoint (vLLM, SGLang, `plait serve --model`) as the inventory declares it.

The planner takes it as given capacity at its declared price; its figures are what `plait cost --remote URL`
measured (the serving model's terms: prefill tokens/s, decode tokens/s per sequence at a few concurrencies, the
fixed overhead of a call, the most sequences it runs at once). The runtime sends it whole LLM calls (text in,
text out) through the official `openai` client, with the key read from the environment variable it names.
"""

from __future__ import annotations

import re

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
REMOTE_PREFIX = "remote:"
"""A remote pool's device in the plan: `remote:NAME` (no catalog device: its price and figures are its own)."""


class RemoteEndpoint(BaseModel):
    """One OpenAI-compatible endpoint serving one catalog model (a `remote:` entry of the inventory)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", description="the pool's name, e.g. 'vllm-a' (lowercase, "
                                                                   "digits, dashes); its device is remote:NAME")
    model: str = Field(description="the catalog model it serves (e.g. llama-3.1-8b): it takes that model's calls")
    base_url: str = Field(description="the API's base URL, e.g. http://10.0.0.5:8000/v1")
    served_model: str = Field(description="the model name the endpoint answers to (its /v1/models id)")
    price_per_hour: float = Field(ge=0, description="USD per hour the endpoint costs (declared, not looked up)")
    prefill_tokens_per_s: float = Field(gt=0, description="prompt tokens per second of one call (measured)")
    decode_tokens_per_s: dict[int, float] = Field(min_length=1, description=(
        "concurrent calls -> output tokens per second of each call at that concurrency (measured); "
        "between two concurrencies: linear, beyond the last: its value"))
    max_sequences: int = Field(ge=1, description="the most calls it runs at once (its capacity; more wait)")
    overhead_s: float = Field(ge=0, description="fixed seconds per call before its prompt is computed "
                                                "(HTTP, scheduling): a one-token prompt's time to first token")
    api_key_env: str | None = Field(default=None, description="the NAME of the environment variable holding "
                                                              "the API key (never the key itself)")
    timeout_s: float = Field(default=120.0, gt=0, description="seconds one call may take before it fails")
    max_retries: int = Field(default=2, ge=0, description="retries of a call that failed to connect or got 5xx/429")

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http(s):// URL, got {value!r}")
        return value.rstrip("/")

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        if value is not None and not ENV_NAME.match(value):
            raise ValueError(f"api_key_env names an environment variable (e.g. VLLM_API_KEY), not a key; got a "
                             f"value of {len(value)} characters that is no variable name")
        return value

    @field_validator("decode_tokens_per_s")
    @classmethod
    def _positive(cls, value: dict[int, float]) -> dict[int, float]:
        if any(n < 1 or tps <= 0 for n, tps in value.items()):
            raise ValueError("decode_tokens_per_s maps concurrency >= 1 to tokens/s > 0")
        return dict(sorted(value.items()))

    @property
    def device(self) -> str:
        return REMOTE_PREFIX + self.name

    def step_s(self, concurrency: float) -> float:
        """Seconds per output token of each call when `concurrency` calls run at once."""
        xs = list(self.decode_tokens_per_s)
        return float(1.0 / np.interp(concurrency, xs, [self.decode_tokens_per_s[x] for x in xs]))

    def prefill_s(self, tokens: float) -> float:
        """One call's time to first token when it runs alone: the overhead and its prompt's compute."""
        return self.overhead_s + tokens / self.prefill_tokens_per_s


def serves(endpoint: RemoteEndpoint, model: str) -> bool:
    """Whether `endpoint` takes calls of `model` (a model planned at a scale, llama-3.1-8b@tiny, matches its
    base name too)."""
    return model == endpoint.model or model.split("@")[0] == endpoint.model
