"""build_engine: a catalog model name to a running engine, from random weights or a user's checkpoint."""

from __future__ import annotations

import pytest
import torch
from _engine_models import ROPE_LLAMA3, SHAPE, one_thread  # noqa: F401  (fixture)

from plait.codegen.engine import SamplingParams
from plait.codegen.errors import CheckpointError
from plait.codegen.llm import build_engine, sampling_for

pytestmark = pytest.mark.usefixtures("one_thread")


def test_a_scale_runs_with_random_weights_that_say_so_and_seeded_sampling_repeats():
    engine = build_engine("llama-3.1-8b@tiny", max_batch=4)
    assert engine.random_weights and engine.config.num_kv_heads == 2 and engine.config.name == "llama-3.1-8b@tiny"
    params = sampling_for({"max_tokens": 12, "sampling": {"temperature": 0.8, "top_p": 0.9, "seed": 7}})
    a, b = engine.generate(["ticket: printer on fire", "ticket: printer on fire"], [params, params])
    assert len(a.token_ids) == 12 and a.token_ids == b.token_ids   # same seed, same draws, in one batch
    other = engine.generate(["ticket: printer on fire"], sampling_for({"max_tokens": 12, "sampling": {
        "temperature": 0.8, "top_p": 0.9, "seed": 8}}))[0]
    assert other.token_ids != a.token_ids


def test_a_saved_checkpoint_of_the_catalogs_architecture_loads_and_generates(tmp_path):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    # llama-3.2-1b's architecture at a tiny size: llama3 rope, 4 heads per kv head, tied embeddings
    hf = LlamaForCausalLM(LlamaConfig(**{**SHAPE, "num_key_value_heads": 1}, rope_scaling=ROPE_LLAMA3,
                                      tie_word_embeddings=True, eos_token_id=None)).eval()
    hf.save_pretrained(tmp_path)
    engine = build_engine("llama-3.2-1b@tiny", tmp_path)
    assert not engine.random_weights
    prompt = [5, 17, 42, 99, 3]
    out = engine.generate([prompt], SamplingParams(max_tokens=8))[0]
    want = hf.generate(torch.tensor([prompt]), max_new_tokens=8, do_sample=False, min_new_tokens=8)[0, len(prompt):]
    assert out.token_ids == want.tolist()

    with pytest.raises(CheckpointError, match=r"(?s)llama-3.1-8b@tiny.*tied embeddings.*has True.*has False"):
        build_engine("llama-3.1-8b@tiny", tmp_path)   # untied in the catalog
    with pytest.raises(CheckpointError, match="no config.json"):
        build_engine("llama-3.2-1b@tiny", tmp_path / "nowhere")
