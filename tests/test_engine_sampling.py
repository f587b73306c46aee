"""Sampling (greedy, temperature, top-p with a seed), stopping (EOS, max_tokens, stop strings), streaming,
tokenizers, and random weights that say so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from _engine_models import one_thread  # noqa: F401

from plait.codegen.engine import (
    LLMEngine,
    ModelConfig,
    SamplingParams,
    load_checkpoint,
    load_tokenizer,
    random_model,
)
from plait.codegen.engine.tokenizer import ByteTokenizer
from plait.codegen.engine.weights import random_checkpoint, save_checkpoint

# vocab 128: every token is one ASCII byte, so the byte-level tokenizer decodes outputs without loss.
TINY = ModelConfig(arch="qwen2", vocab_size=128, hidden_size=32, intermediate_size=64, num_layers=2, num_heads=4,
                   num_kv_heads=2, head_dim=8, attention_bias=True, max_position_embeddings=256, name="tiny-qwen")
PROMPT = [72, 101, 108, 108, 111]

pytestmark = pytest.mark.usefixtures("one_thread")  # imported above: pytest finds fixtures by name


def engine(config: ModelConfig = TINY, **kwargs: object) -> LLMEngine:
    return LLMEngine(random_model(config, seed=1), config, **{"block_size": 4, "num_blocks": 64,
                                                              "tokenizer": ByteTokenizer(), **kwargs})


def test_seeded_sampling_repeats_whatever_else_is_in_the_batch() -> None:
    params = SamplingParams(temperature=1.0, top_p=0.9, max_tokens=12, seed=7)
    alone, = engine().generate([PROMPT], params)
    crowd = engine().generate([[1, 2, 3], PROMPT, [9] * 9],
                              [SamplingParams(temperature=1.0, max_tokens=5, seed=1), params, SamplingParams()])
    assert crowd[1].token_ids == alone.token_ids
    other_seed, = engine().generate([PROMPT], SamplingParams(temperature=1.0, max_tokens=12, seed=8))
    assert other_seed.token_ids != alone.token_ids


def test_a_tiny_top_p_is_greedy() -> None:
    greedy, = engine().generate([PROMPT], SamplingParams(max_tokens=10))
    narrow, = engine().generate([PROMPT], SamplingParams(temperature=1.5, top_p=1e-6, max_tokens=10, seed=3))
    assert narrow.token_ids == greedy.token_ids


def test_stops_on_eos_stop_tokens_and_stop_strings() -> None:
    free_run, = engine().generate([PROMPT], SamplingParams(max_tokens=10))
    tokens = free_run.token_ids
    assert free_run.finish_reason == "length" and len(tokens) == 10
    eos = tokens[3]
    cut = tokens.index(eos) + 1
    with_eos, = engine(TINY.replace(eos_token_ids=(eos,))).generate([PROMPT], SamplingParams(max_tokens=10))
    assert (with_eos.token_ids, with_eos.finish_reason) == (tokens[:cut], "stop")
    ignoring, = engine(TINY.replace(eos_token_ids=(eos,))).generate(
        [PROMPT], SamplingParams(max_tokens=10, ignore_eos=True))
    assert ignoring.token_ids == tokens
    by_id, = engine().generate([PROMPT], SamplingParams(max_tokens=10, stop_token_ids=[eos]))
    assert by_id.token_ids == tokens[:cut]
    text = ByteTokenizer().decode(tokens)
    stop = text[4:6]
    by_string, = engine().generate([ByteTokenizer().decode(PROMPT)], SamplingParams(max_tokens=10, stop=[stop]))
    assert by_string.finish_reason == "stop" and by_string.text == text[:text.index(stop)]


def test_step_streams_one_token_per_request_per_step() -> None:
    e = engine(token_budget=64)
    first = e.add_request(PROMPT, SamplingParams(max_tokens=3))
    second = e.add_request([1, 2], SamplingParams(max_tokens=2))
    steps = []
    while e.has_unfinished():
        steps.append([(o.request_id, o.finished) for o in e.step()])
    assert steps == [[(first, False), (second, False)], [(first, False), (second, True)], [(first, True)]]
    assert len(e.output(first).token_ids) == 3 and first not in e.sequences  # handed out once, then forgotten



def test_decodes_run_every_step_beside_a_chunked_prompt() -> None:
    e = engine(token_budget=8)
    first = e.add_request([5, 6, 7], SamplingParams(max_tokens=10))
    e.step()
    second = e.add_request(list(range(1, 31)), SamplingParams(max_tokens=2))
    made, prompt_tokens = [], []
    for _ in range(5):
        before = e.prefill_tokens_computed
        made.append([o.request_id for o in e.step()])
        prompt_tokens.append(e.prefill_tokens_computed - before)
    assert prompt_tokens == [8, 8, 8, 6, 0]  # 30 prompt tokens in chunks of the budget
    assert made == [[first]] * 3 + [[first, second]] * 2  # the first request's decode never waits

def test_random_weights_say_so_and_round_trip_through_a_checkpoint(tmp_path: Path) -> None:
    e = engine()
    out, = e.generate([PROMPT], SamplingParams(max_tokens=4))
    assert e.random_weights and out.random_weights
    save_checkpoint(tmp_path, TINY, random_checkpoint(TINY, seed=1))
    config, model = load_checkpoint(tmp_path)
    assert config.replace(name="tiny-qwen") == TINY and not model.random_weights
    loaded, = LLMEngine(model, config, block_size=4, num_blocks=64).generate([PROMPT], SamplingParams(max_tokens=4))
    assert loaded.token_ids == out.token_ids and not loaded.random_weights
    assert TINY.n_params() == sum(p.numel() for p in model.parameters())
    assert config.differences(TINY) == []
    assert config.differences(TINY.replace(num_layers=32, name="other")) == ["num_layers: 2, expected 32"]



def test_bfloat16_weights_keep_a_bfloat16_cache_and_say_so_in_the_kv_header() -> None:
    e = LLMEngine(random_model(TINY, seed=1, dtype=torch.bfloat16), TINY, block_size=4, num_blocks=64,
                  role="prefill")
    first, = e.generate([PROMPT], SamplingParams(max_tokens=4))
    header, tensors = e.export_kv(first.request_id)
    assert header["dtype"] == "bfloat16" and tensors["k"].dtype == torch.bfloat16

def test_the_checkpoint_folder_must_hold_the_model(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="has no config.json"):
        load_checkpoint(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({**TINY.to_hf(), "model_type": "mixtral"}))
    with pytest.raises(ValueError, match="model_type 'mixtral' has no engine kernel"):
        load_checkpoint(tmp_path)
    save_checkpoint(tmp_path, TINY, {k: v for k, v in random_checkpoint(TINY).items() if "layers.1." not in k})
    with pytest.raises(ValueError, match="lacks 12 tensors the qwen2 model needs"):
        load_checkpoint(tmp_path)


def test_tokenizers(tmp_path: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {"[UNK]": 0, "hello": 1, "plait": 2, "world": 3}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.save(str(tmp_path / "tokenizer.json"))
    words = load_tokenizer(tmp_path)
    assert words.encode("hello plait world") == [1, 2, 3] and words.decode([1, 3]) == "hello world"
    raw = load_tokenizer(None)
    assert raw.decode(raw.encode("naïve ✓")) == "naïve ✓"
    assert load_tokenizer(tmp_path / "nowhere").vocab_size == 256
    assert torch.tensor(raw.encode("A")).item() == 65


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_the_engine_runs_on_a_gpu_like_on_the_cpu() -> None:
    params = SamplingParams(max_tokens=6)
    on_cpu = LLMEngine(random_model(TINY, seed=1), TINY, block_size=4, num_blocks=64, keep_logits=True)
    on_gpu = LLMEngine(random_model(TINY, seed=1, device="cuda"), TINY, block_size=4, num_blocks=64, keep_logits=True)
    want, got = on_cpu.generate([PROMPT, [1, 2]], params), on_gpu.generate([PROMPT, [1, 2]], params)
    for w, g in zip(want, got, strict=True):
        assert g.token_ids == w.token_ids
        torch.testing.assert_close(torch.stack(g.logits), torch.stack(w.logits), atol=1e-3, rtol=0)
