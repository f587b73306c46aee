"""The models an agent may name, by kind; a misspelt or wrongly kinded name is a TraceError."""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Any, Literal

from plait.sdk.errors import TraceError

if TYPE_CHECKING:
    from plait.sdk.graph import AgentGraph

ModelKind = Literal["llm", "encoder", "stt", "tts"]

MODELS: dict[str, ModelKind] = {
    "llama-3.2-1b": "llm",
    "llama-3.1-8b": "llm",
    "llama-3.1-70b": "llm",
    "qwen2.5-32b": "llm",
    "mistral-7b": "llm",
    "mixtral-8x7b": "llm",
    "minilm-l6": "encoder",
    "bge-base": "encoder",
    "whisper-small": "stt",
    "parler-tts-mini": "tts",
}

CONTEXT_WINDOWS: dict[str, int] = {
    # max_position_embeddings of each config.json the catalog names (planner/catalog/models.yaml);
    # Qwen2.5 and Mistral serve 32k without rope scaling, which the catalog does not model.
    "llama-3.2-1b": 131072,
    "llama-3.1-8b": 131072,
    "llama-3.1-70b": 131072,
    "qwen2.5-32b": 32768,
    "mistral-7b": 32768,
    "mixtral-8x7b": 32768,
}
"""Tokens an LLM attends over: its prompt plus what it generates must fit."""

SCALES = ("tiny", "small")
"""Scaled-down sizes of the dense LLMs (`llama-3.1-8b@tiny`): random weights of the same architecture that run on
a CPU (the catalog, planner/catalog/models.yaml, lists their dimensions)."""
DENSE_LLMS = ("llama-3.2-1b", "llama-3.1-8b", "llama-3.1-70b", "qwen2.5-32b", "mistral-7b")
"""The LLMs that have scales (not the mixture of experts)."""


def kind_of(name: str) -> ModelKind | None:
    """The kind of a model name (a scale is its model's kind), or None if the catalog has no such model."""
    base, sep, scale = name.partition("@")
    if sep:
        return "llm" if base in DENSE_LLMS and scale in SCALES else None
    return MODELS.get(name)


def base_model(name: str) -> str:
    """`llama-3.1-8b` for `llama-3.1-8b@tiny`; other names as they are."""
    return name.split("@", 1)[0]


EMBED_DIMS: dict[str, int] = {"minilm-l6": 384, "bge-base": 768}
"""Width of each encoder's embedding vector (the `dim` attribute of embed and retrieve nodes)."""

_ARTICLE = {"llm": "an llm", "encoder": "an encoder", "stt": "a speech-to-text (stt)",
            "tts": "a text-to-speech (tts)"}


def models_of(kind: ModelKind) -> list[str]:
    """The catalog's model names of one kind, in catalog order."""
    return [name for name, k in MODELS.items() if k == kind]


def check_model(name: object, kind: ModelKind, step: str, where: str) -> str:
    """Return `name` when the catalog has it as a model of `kind`; else raise TraceError.

    `step` is the SDK call (`plait.llm`), `where` the user's "file:line" line of the message.
    """
    choices = models_of(kind)
    found = kind_of(name) if isinstance(name, str) else None
    if found is None:
        close = difflib.get_close_matches(str(name), list(MODELS), n=1, cutoff=0.5)
        hint = f"did you mean {close[0]!r}? " if close else ""
        scales = f" (dense LLMs also at {' or '.join('@' + s for s in SCALES)})" if kind == "llm" else ""
        raise TraceError(f"unknown model {name!r} for {step}\n  {where}\n"
                         f"  To fix: {hint}{step} takes one of: {', '.join(choices)}{scales}")
    if found != kind:
        raise TraceError(f"model {name!r} is {_ARTICLE[found]} model, but {step} needs "
                         f"{_ARTICLE[kind]} model\n  {where}\n  To fix: use one of: {', '.join(choices)}")
    return str(name)


def at_scale(graph: AgentGraph, scale: str) -> AgentGraph:
    """A copy of `graph` whose dense LLM calls name their model at `scale` (`llama-3.1-8b` -> `llama-3.1-8b@tiny`),
    in every region and sub-agent: what this machine runs without a checkpoint, so a plan of it predicts what runs.
    Calls already at a scale, other models and other steps are kept as they are."""
    if scale not in SCALES:
        raise TraceError(f"unknown scale {scale!r}\n  To fix: use one of {', '.join(SCALES)}.")

    def rescale(data: dict[str, Any]) -> dict[str, Any]:
        nodes = []
        for node in data["nodes"]:
            if node["kind"] == "llm" and node["target"] in DENSE_LLMS:
                node = {**node, "target": f"{node['target']}@{scale}"}
            node = {**node, "regions": {k: rescale(r) for k, r in node.get("regions", {}).items()}}
            nodes.append(node)
        return {**data, "nodes": nodes}

    return type(graph).from_dict(rescale(graph.to_dict()))
