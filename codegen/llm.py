"""An LLM engine for a catalog model: from a user's checkpoint (checked against the catalog) or random weights.

The engine itself (plait.codegen.engine) reads neither the catalog nor pydantic specs; this module is the
one place that joins the two, so a worker builds the engine a device program names with one call.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from plait.codegen.checkpoint import check_checkpoint, engine_config_for
from plait.codegen.engine.config import ModelConfig
from plait.codegen.engine.engine import LLMEngine
from plait.codegen.engine.sampling import SamplingParams
from plait.codegen.engine.tokenizer import load_tokenizer
from plait.codegen.engine.weights import load_checkpoint, random_model
from plait.codegen.errors import CheckpointError
from plait.codegen.structured import JsonSchemaConstraint


def build_engine(model_name: str, weights: str | Path | None = None, *, role: str = "unified", seed: int = 0,
                 dtype: torch.dtype | None = None, device: str | torch.device = "cpu",
                 **engine_args: Any) -> LLMEngine:
    """The engine for `model_name` (a catalog name, e.g. `llama-3.1-8b` or `llama-3.1-8b@tiny`).

    With `weights` (a local Hugging Face folder: config.json, *.safetensors, optionally tokenizer.json) the
    checkpoint must be an instance of the catalog's architecture for that name; without, the catalog's
    dimensions get seeded random weights and `engine.random_weights` says so. dtype None: bfloat16 on
    CUDA (decode steps then replay from CUDA graphs), float32 on the CPU."""
    if dtype is None:
        dtype = torch.bfloat16 if torch.device(device).type == "cuda" else torch.float32
    if weights is None:
        config = ModelConfig(**engine_config_for(model_name), name=model_name)
        model = random_model(config, seed=seed, dtype=dtype, device=device)
        return LLMEngine(model, config, role=role, tokenizer=load_tokenizer(None), **engine_args)
    folder = Path(weights)
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise CheckpointError(f"weights for {model_name!r}: {folder} has no config.json\n"
                              "  To fix: give a local Hugging Face checkpoint folder (config.json and *.safetensors)")
    check_checkpoint(model_name, json.loads(config_file.read_text()))
    config, model = load_checkpoint(folder, dtype=dtype, device=device)
    return LLMEngine(model, config, role=role, tokenizer=load_tokenizer(folder), **engine_args)


def sampling_for(attrs: dict[str, Any], max_tokens: int | None = None,
                 engine: LLMEngine | None = None) -> SamplingParams:
    """SamplingParams from a device program step's attributes (`sampling` as plait.llm recorded it).

    A `json_schema` in the sampling becomes a fresh grammar constraint (one per request: it holds the
    grammar's state) for `engine`'s tokenizer; read the answer with plait.codegen.structured.json_output."""
    s = attrs.get("sampling") or {}
    if not isinstance(s, dict):
        raise TypeError(f"a program step's sampling attribute must be a mapping, got {s!r}")
    constraint = None
    if (schema := s.get("json_schema")) is not None:
        if engine is None or engine.tokenizer is None:
            raise ValueError("a step with a json_schema needs the engine (and its tokenizer) to build the grammar. "
                             "To fix: sampling_for(attrs, engine=engine)")
        constraint = JsonSchemaConstraint(schema, engine.tokenizer, engine.config)
    return SamplingParams(temperature=float(s.get("temperature", 0.0)), top_p=float(s.get("top_p", 1.0)),
                          stop=[str(x) for x in s.get("stop", [])],
                          seed=None if s.get("seed") is None else int(s["seed"]),
                          max_tokens=int(max_tokens if max_tokens is not None else attrs.get("max_tokens", 16)),
                          constraint=constraint)
