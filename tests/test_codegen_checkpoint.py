"""Scaled model sizes in the catalog, the engine's config from a catalog name, and refusing a wrong checkpoint."""

from __future__ import annotations

import pytest

from plait.codegen.checkpoint import ENGINE_FIELDS, check_checkpoint, engine_config_for
from plait.codegen.errors import CheckpointError, NoKernelError
from plait.planner.catalog import CatalogError, load_catalog
from plait.planner.costmodel import estimate
from plait.planner.workload import OpSpec, stack_params

DENSE = ["llama-3.2-1b", "llama-3.1-8b", "llama-3.1-70b", "qwen2.5-32b", "mistral-7b"]


@pytest.mark.parametrize("name", DENSE)
def test_scales_keep_the_architecture_at_their_size(name: str) -> None:
    cat = load_catalog()
    full = cat.model(name)
    assert set(full.scales) == {"tiny", "small"} and full.arch is not None
    for scale, (low, high) in (("tiny", (1e6, 10e6)), ("small", (100e6, 150e6))):
        m = cat.model(f"{name}@{scale}")
        assert m.name == f"{name}@{scale}" and m.scale == scale and m.base_name == name
        d, f = m.decoder, full.decoder
        assert d is not None and f is not None
        assert low <= stack_params(d, "decoder")["total"] <= high
        assert d.heads // d.n_kv == f.heads // f.n_kv                      # the GQA ratio
        assert (d.tied_embeddings, d.bias, d.mlp, d.norm) == (f.tied_embeddings, f.bias, f.mlp, f.norm)
        assert m.arch is not None and m.arch.rope_scaling == full.arch.rope_scaling
    assert estimate(OpSpec(op="decode", model=f"{name}@tiny", ctx=128), "h200", 1).seconds > 0   # it costs


def test_unknown_scales_and_scales_of_models_without_them_are_refused() -> None:
    cat = load_catalog()
    with pytest.raises(CatalogError, match=r"^model 'llama-3.1-8b' has no scale 'tine'\. Did you mean: tiny\?\n"
                                           r"To fix: use one of its scales: llama-3.1-8b@tiny, llama-3.1-8b@small\."):
        cat.model("llama-3.1-8b@tine")
    with pytest.raises(CatalogError, match=r"^model 'mixtral-8x7b' has no scaled sizes \(only dense LLMs have them\)"):
        cat.model("mixtral-8x7b@tiny")


def test_engine_config_has_exactly_the_engine_fields() -> None:
    tiny = engine_config_for("llama-3.1-8b@tiny")
    assert tuple(tiny) == ENGINE_FIELDS
    assert tiny == {"arch": "llama", "vocab_size": 512, "hidden_size": 256, "intermediate_size": 896, "num_layers": 4,
                    "num_heads": 8, "num_kv_heads": 2, "head_dim": 32, "rope_theta": 500000.0,
                    "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                     "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
                    "rms_norm_eps": 1e-5, "tie_word_embeddings": False, "attention_bias": False,
                    "max_position_embeddings": 131072, "eos_token_ids": [256]}
    qwen = engine_config_for("qwen2.5-32b")
    assert (qwen["arch"], qwen["attention_bias"], qwen["num_heads"], qwen["num_kv_heads"]) == ("qwen2", True, 40, 8)
    assert engine_config_for("llama-3.2-1b@small")["tie_word_embeddings"] is True


def test_engine_config_refuses_models_the_engine_does_not_run() -> None:
    with pytest.raises(NoKernelError, match=r"^no kernel for model 'mixtral-8x7b' yet \(codegen 2\): 'mixtral-8x7b' is "
                                            r"a mixture-of-experts model \(8 experts, 2 per token\)"):
        engine_config_for("mixtral-8x7b")
    with pytest.raises(NoKernelError, match=r"'minilm-l6' has no decoder \(it is an encoder\)"):
        engine_config_for("minilm-l6")


def _hf(model: str) -> dict[str, object]:
    """A config.json as transformers writes it, from the engine config of `model`."""
    c = engine_config_for(model)
    return {"model_type": c["arch"], "hidden_size": c["hidden_size"], "intermediate_size": c["intermediate_size"],
            "num_hidden_layers": c["num_layers"], "num_attention_heads": c["num_heads"],
            "num_key_value_heads": c["num_kv_heads"], "head_dim": c["head_dim"], "vocab_size": c["vocab_size"],
            "rope_theta": c["rope_theta"], "rope_scaling": c["rope_scaling"], "rms_norm_eps": c["rms_norm_eps"],
            "tie_word_embeddings": c["tie_word_embeddings"], "attention_bias": c["attention_bias"]}


def test_a_checkpoint_of_the_model_passes() -> None:
    check_checkpoint("llama-3.1-8b", _hf("llama-3.1-8b"))
    check_checkpoint("qwen2.5-32b@tiny", _hf("qwen2.5-32b@tiny"))
    other_size = {**_hf("llama-3.1-8b@tiny"), "hidden_size": 64, "num_hidden_layers": 1, "head_dim": 8}
    check_checkpoint("llama-3.1-8b@tiny", other_size)         # a scale checks architecture, not dimensions


def test_a_checkpoint_of_another_architecture_is_refused_naming_both() -> None:
    qwen = _hf("qwen2.5-32b@tiny")
    with pytest.raises(CheckpointError) as err:
        check_checkpoint("llama-3.1-8b@tiny", qwen)
    lines = str(err.value).splitlines()
    assert lines[0] == "checkpoint config disagrees with the catalog's 'llama-3.1-8b@tiny' (4 difference(s)):"
    assert lines[1:5] == [
        "  model_type: the checkpoint is 'qwen2', llama-3.1-8b@tiny is 'llama' (llama architecture)",
        "  GQA ratio (heads per kv head): the checkpoint has 5, llama-3.1-8b@tiny has 4",
        "  qkv bias: the checkpoint has True, llama-3.1-8b@tiny has False",
        "  rope scaling type: the checkpoint has none, llama-3.1-8b@tiny has llama3"]
    tied = {**_hf("llama-3.1-8b@tiny"), "tie_word_embeddings": True}
    with pytest.raises(CheckpointError, match=r"tied embeddings \(tie_word_embeddings\): the checkpoint has True"):
        check_checkpoint("llama-3.1-8b@tiny", tied)


def test_at_full_size_the_dimensions_must_match_too() -> None:
    smaller = {**_hf("llama-3.1-8b"), "num_hidden_layers": 16}
    with pytest.raises(CheckpointError, match=r"num_hidden_layers: the checkpoint has 16, llama-3.1-8b has 32"):
        check_checkpoint("llama-3.1-8b", smaller)
    windowed = {**_hf("mistral-7b"), "model_type": "mistral", "sliding_window": 4096}
    with pytest.raises(CheckpointError, match=r"sliding window: the checkpoint attends over a window of 4096"):
        check_checkpoint("mistral-7b", windowed)


def test_the_sdk_names_the_catalogs_scales() -> None:
    from plait.sdk.models import DENSE_LLMS, SCALES, kind_of

    cat = load_catalog()
    assert {n for n, m in cat.models.items() if m.scales} == set(DENSE_LLMS) == set(DENSE)
    assert all(tuple(cat.models[n].scales) == SCALES for n in DENSE_LLMS)
    assert (kind_of("llama-3.1-8b@tiny"), kind_of("mixtral-8x7b@tiny"), kind_of("llama-3.1-8b@huge")) == ("llm", None,
                                                                                                          None)


def test_plait_catalog_models_lists_the_scales() -> None:
    from plait.cli.catalog_cmd import model_rows

    rows = {r["model"]: r for r in model_rows(load_catalog())}
    tiny = rows["llama-3.1-8b"]["scales"]["tiny"]
    assert (tiny["params_m"], tiny["layers"], tiny["d_model"], tiny["heads"], tiny["kv_heads"]) == (3.7, 4, 256, 8, 2)
    assert rows["llama-3.1-8b"]["scales"]["small"]["params_m"] == 142.4 and rows["mixtral-8x7b"]["scales"] == {}
