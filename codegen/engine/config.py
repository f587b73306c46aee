"""The shape of a decoder-only model the engine runs (Llama 3.x, Qwen 2.5), read from a HF config.json."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

ARCHES = {"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM"}
ROPE_TYPES = ("default", "llama3")


@dataclass(frozen=True)
class ModelConfig:
    """Dimensions and numerics of one dense decoder-only model; field names follow the engine, not HF."""

    arch: str
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    rope_theta: float = 10000.0
    rope_scaling: dict[str, Any] | None = None  # HF format, e.g. {"rope_type": "llama3", "factor": 8.0, ...}
    rms_norm_eps: float = 1e-6
    tie_word_embeddings: bool = False
    attention_bias: bool = False  # a bias on q, k and v (Qwen 2.5), none on o
    max_position_embeddings: int = 8192
    eos_token_ids: tuple[int, ...] = ()
    name: str = ""  # the model's name where known (catalog entry or folder), carried in KV export headers

    def __post_init__(self) -> None:
        if self.arch not in ARCHES:
            raise ValueError(f"model arch {self.arch!r} has no engine kernel. To fix: use one of {sorted(ARCHES)}")
        if self.num_heads % self.num_kv_heads:
            raise ValueError(f"num_heads={self.num_heads} is not a multiple of num_kv_heads={self.num_kv_heads}")
        rope_type = (self.rope_scaling or {}).get("rope_type", (self.rope_scaling or {}).get("type", "default"))
        if rope_type not in ROPE_TYPES:
            raise ValueError(f"rope_scaling type {rope_type!r} is not implemented. To fix: use one of {ROPE_TYPES}")

    @staticmethod
    def from_hf(hf: dict[str, Any], name: str = "") -> ModelConfig:
        """Read a HF config.json dict (transformers 4.x `rope_scaling` + `rope_theta`, or 5.x `rope_parameters`)."""
        model_type = hf.get("model_type", "")
        if model_type not in ARCHES:
            raise ValueError(f"config.json model_type {model_type!r} has no engine kernel. "
                             f"To fix: use a checkpoint of {sorted(ARCHES)}")
        if model_type == "llama" and (hf.get("attention_bias") or hf.get("mlp_bias")):
            raise ValueError("config.json sets attention_bias or mlp_bias on a llama; Llama 3.x has neither, "
                             "and the engine does not implement them")
        if model_type == "qwen2" and hf.get("use_sliding_window"):
            raise ValueError("config.json sets use_sliding_window on a qwen2; the engine implements full attention only")
        rope = dict(hf.get("rope_parameters") or hf.get("rope_scaling") or {})
        rope_theta = float(rope.pop("rope_theta", hf.get("rope_theta", 10000.0)))
        rope_type = rope.get("rope_type", rope.get("type", "default"))
        heads = hf["num_attention_heads"]
        eos = hf.get("eos_token_id")
        eos_ids = tuple(eos) if isinstance(eos, list) else (() if eos is None else (eos,))
        return ModelConfig(
            arch=model_type, vocab_size=hf["vocab_size"], hidden_size=hf["hidden_size"],
            intermediate_size=hf["intermediate_size"], num_layers=hf["num_hidden_layers"], num_heads=heads,
            num_kv_heads=hf.get("num_key_value_heads") or heads,
            head_dim=hf.get("head_dim") or hf["hidden_size"] // heads,
            rope_theta=rope_theta, rope_scaling=None if rope_type == "default" else rope,
            rms_norm_eps=hf.get("rms_norm_eps", 1e-6), tie_word_embeddings=bool(hf.get("tie_word_embeddings", False)),
            attention_bias=model_type == "qwen2",  # Qwen2's q/k/v always carry a bias in HF's model code
            max_position_embeddings=hf.get("max_position_embeddings", 8192), eos_token_ids=eos_ids, name=name)

    def to_hf(self) -> dict[str, Any]:
        """The config.json a HF model class of this architecture reads (transformers 4.x field names)."""
        rope = dict(self.rope_scaling or {})
        return {"architectures": [ARCHES[self.arch]], "model_type": self.arch, "vocab_size": self.vocab_size,
                "hidden_size": self.hidden_size, "intermediate_size": self.intermediate_size,
                "num_hidden_layers": self.num_layers, "num_attention_heads": self.num_heads,
                "num_key_value_heads": self.num_kv_heads, "head_dim": self.head_dim, "rope_theta": self.rope_theta,
                "rope_scaling": rope or None, "rms_norm_eps": self.rms_norm_eps,
                "tie_word_embeddings": self.tie_word_embeddings, "max_position_embeddings": self.max_position_embeddings,
                "eos_token_id": list(self.eos_token_ids) or None, "hidden_act": "silu"}

    def differences(self, expected: ModelConfig) -> list[str]:
        """What in this config disagrees with `expected`'s architecture ("num_layers: 2, expected 32"): the
        check that refuses a checkpoint whose config.json is not the model it was given for. The name, EOS
        ids and max positions are not architecture and are not compared."""
        skip = {"name", "eos_token_ids", "max_position_embeddings"}
        return [f"{f.name}: {getattr(self, f.name)!r}, expected {getattr(expected, f.name)!r}"
                for f in dataclasses.fields(self)
                if f.name not in skip and getattr(self, f.name) != getattr(expected, f.name)]

    def replace(self, **changes: Any) -> ModelConfig:
        return dataclasses.replace(self, **changes)

    def n_params(self) -> int:
        """Parameter count (embeddings counted once when tied)."""
        q = self.num_heads * self.head_dim
        kv = self.num_kv_heads * self.head_dim
        attn = self.hidden_size * (q + 2 * kv) + q * self.hidden_size + (q + 2 * kv if self.attention_bias else 0)
        mlp = 3 * self.hidden_size * self.intermediate_size
        layer = attn + mlp + 2 * self.hidden_size
        embed = self.vocab_size * self.hidden_size * (1 if self.tie_word_embeddings else 2)
        return self.num_layers * layer + embed + self.hidden_size

    def kv_bytes_per_token(self, dtype_bytes: int) -> int:
        """KV cache bytes one token takes across all layers (keys and values)."""
        return 2 * self.num_layers * self.num_kv_heads * self.head_dim * dtype_bytes

