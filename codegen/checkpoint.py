"""The LLM engine's model configuration from the catalog, and the check that a checkpoint is the model it claims.

`engine_config_for("llama-3.1-8b@tiny")` gives exactly the fields of the engine's ModelConfig
(plait.codegen.engine.config), so the engine builds a model from a catalog name without reading the catalog
itself (its modules import only torch, safetensors and tokenizers). `check_checkpoint` refuses a local
Hugging Face checkpoint whose config.json is another architecture than the catalog's model of that name.
"""

from __future__ import annotations

from typing import Any

from plait.codegen.errors import CheckpointError, NoKernelError
from plait.codegen.kernels import CODEGEN_2, llm_engine_missing
from plait.planner.catalog import ModelSpec, load_catalog

ENGINE_FIELDS = ("arch", "vocab_size", "hidden_size", "intermediate_size", "num_layers", "num_heads", "num_kv_heads",
                 "head_dim", "rope_theta", "rope_scaling", "rms_norm_eps", "tie_word_embeddings", "attention_bias",
                 "max_position_embeddings", "eos_token_ids")
"""The engine's ModelConfig fields, in its order."""


def _engine_model(model_name: str) -> ModelSpec:
    """The catalog's model (or scale) when the LLM engine runs it; NoKernelError naming what is missing else."""
    spec = load_catalog().model(model_name)
    if (missing := llm_engine_missing(spec)) is not None:
        raise NoKernelError(f"no kernel for model {spec.name!r} {CODEGEN_2}: {missing}\n"
                            "  To fix: use a dense llama or qwen2 model of `plait catalog models` (or one of its "
                            "scales, e.g. llama-3.1-8b@tiny).")
    return spec


def engine_config_for(model_name: str) -> dict[str, Any]:
    """The engine's ModelConfig fields for a catalog model or scale (`llama-3.1-8b`, `qwen2.5-32b@small`).

    Raises CatalogError for an unknown model or scale, NoKernelError for a model the engine does not run
    (a mixture of experts, an encoder, a speech decoder).

    >>> engine_config_for("llama-3.1-8b@tiny")["num_kv_heads"]
    2
    """
    spec = _engine_model(model_name)
    d, a = spec.decoder, spec.arch
    assert d is not None and a is not None   # _engine_model checked
    return {
        "arch": a.arch, "vocab_size": d.vocab, "hidden_size": d.d_model, "intermediate_size": d.ffn,
        "num_layers": d.layers, "num_heads": d.heads, "num_kv_heads": d.n_kv, "head_dim": d.hd,
        "rope_theta": a.rope_theta, "rope_scaling": dict(a.rope_scaling) if a.rope_scaling is not None else None,
        "rms_norm_eps": a.rms_norm_eps, "tie_word_embeddings": d.tied_embeddings, "attention_bias": d.bias == "qkv",
        "max_position_embeddings": a.max_position_embeddings,
        "eos_token_ids": list(a.eos_token_ids),
    }


def _rope_type(scaling: Any) -> str:
    """`llama3`, `linear`, ... from a config's rope_scaling (HF wrote `type` before `rope_type`); `none` if absent."""
    if not isinstance(scaling, dict):
        return "none"
    kind = str(scaling.get("rope_type", scaling.get("type", "default")))
    return "none" if kind == "default" else kind   # transformers 5 writes rope_type "default" for no scaling


def _rope(hf: dict[str, Any]) -> tuple[float, dict[str, Any] | None]:
    """A config.json's rope theta and scaling: transformers 4.x writes `rope_theta` and `rope_scaling`,
    5.x one `rope_parameters` holding both (the theta inside)."""
    rope = dict(hf.get("rope_parameters") or hf.get("rope_scaling") or {})
    theta = float(rope.pop("rope_theta", hf.get("rope_theta", 0.0)))
    return theta, (rope or None)


def _checkpoint_facts(hf: dict[str, Any]) -> dict[str, Any]:
    """What a config.json says about the architecture, with transformers' defaults where a key is absent."""
    heads = int(hf.get("num_attention_heads", 0))
    kv = int(hf.get("num_key_value_heads") or heads)
    model_type = str(hf.get("model_type", "?"))
    # transformers' Qwen2 always gives q, k and v a bias; Llama and Mistral have one only with attention_bias
    qkv_bias = model_type == "qwen2" or bool(hf.get("attention_bias", False))
    hidden = int(hf.get("hidden_size", 0))
    return {"model_type": model_type, "heads": heads, "kv_heads": kv, "tied": bool(hf.get("tie_word_embeddings", False)),
            "qkv_bias": qkv_bias, "rope": _rope_type(_rope(hf)[1]), "hidden": hidden,
            "head_dim": int(hf.get("head_dim") or (hidden // heads if heads else 0)),
            "sliding_window": hf.get("sliding_window") if hf.get("use_sliding_window", True) else None}


def check_checkpoint(model_name: str, hf_config: dict[str, Any]) -> None:
    """Refuse a checkpoint (its config.json as a dict) that is not an instance of the catalog's `model_name`.

    Always checked: the family (model_type), the GQA ratio (heads per kv head), tied embeddings, the qkv
    bias, the rope scaling type and no sliding window. At full size (no `@scale`) also every dimension, the
    rope theta and scaling; a scale's checkpoint may have any size, as long as it has the architecture.
    Raises CheckpointError naming the model, the checkpoint's values and the catalog's.
    """
    spec = _engine_model(model_name)
    d, a = spec.decoder, spec.arch
    assert d is not None and a is not None
    got = _checkpoint_facts(hf_config)
    wrong: list[str] = []

    def differ(what: str, theirs: object, ours: object) -> None:
        if theirs != ours:
            wrong.append(f"{what}: the checkpoint has {theirs}, {spec.name} has {ours}")

    if got["model_type"] not in a.model_types:
        wrong.append(f"model_type: the checkpoint is {got['model_type']!r}, {spec.name} is "
                     f"{' or '.join(repr(t) for t in a.model_types)} ({a.arch} architecture)")
    if got["heads"] < 1 or got["kv_heads"] < 1 or got["heads"] % got["kv_heads"]:
        wrong.append(f"attention heads: the checkpoint has {got['heads']} heads over {got['kv_heads']} kv heads")
    else:
        differ("GQA ratio (heads per kv head)", got["heads"] // got["kv_heads"], d.heads // d.n_kv)
    differ("tied embeddings (tie_word_embeddings)", got["tied"], d.tied_embeddings)
    differ("qkv bias", got["qkv_bias"], d.bias == "qkv")
    differ("rope scaling type", got["rope"], _rope_type(a.rope_scaling))
    if got["sliding_window"] is not None and got["model_type"] == "mistral":
        wrong.append(f"sliding window: the checkpoint attends over a window of {got['sliding_window']} tokens, "
                     f"{spec.name} over its whole context")
    if spec.scale is None:   # a full-size model: its dimensions and rope too
        for key, ours in (("hidden_size", d.d_model), ("intermediate_size", d.ffn), ("num_hidden_layers", d.layers),
                          ("num_attention_heads", d.heads), ("num_key_value_heads", d.n_kv),
                          ("vocab_size", d.vocab)):
            differ(key, hf_config.get(key), ours)
        differ("head_dim", got["head_dim"], d.hd)
        theta, theirs = _rope(hf_config)
        differ("rope_theta", theta, a.rope_theta)
        if a.rope_scaling is not None and theirs is not None:
            for name, value in a.rope_scaling.items():
                differ(f"rope_scaling.{name}", theirs.get(name), value)
    if wrong:
        raise CheckpointError(
            f"checkpoint config disagrees with the catalog's {spec.name!r} ({len(wrong)} difference(s)):\n  "
            + "\n  ".join(wrong)
            + f"\n  To fix: give a checkpoint of {spec.name} (config.json from {spec.source.url}), or name the model "
              "the checkpoint is of; a checkpoint of another size of this architecture loads as a scale "
              f"({spec.base_name}@tiny, {spec.base_name}@small: architecture checked, not dimensions).")
