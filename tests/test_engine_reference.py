"""The engine's logits and tokens equal transformers' on the same checkpoints (fp32, within 1e-4)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

pytest.importorskip("transformers")

from _engine_models import MODELS, build_reference, one_thread, reference_logits  # noqa: E402, F401

from plait.codegen.engine import LLMEngine, SamplingParams, load_checkpoint  # noqa: E402

TOL = 1e-4
PROMPTS = [[5, 17, 99], list(range(40, 51)), [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2],
           list(range(200, 230))]

pytestmark = pytest.mark.usefixtures("one_thread")  # imported above: pytest finds fixtures by name


@pytest.fixture(scope="module", params=MODELS)
def checkpoint(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    folder = tmp_path_factory.mktemp(request.param)
    return folder, build_reference(request.param, folder)


def engine_for(folder: Path, **kwargs: object) -> LLMEngine:
    config, model = load_checkpoint(folder)
    return LLMEngine(model, config, **{"block_size": 4, "num_blocks": 128, "keep_logits": True, **kwargs})


def assert_logits_match(reference: torch.nn.Module, prompt: list[int], tokens: list[int],
                        logits: list[torch.Tensor]) -> None:
    """Row i of the engine's logits picked token i; transformers' logits at the position before it must agree."""
    full = reference_logits(reference, prompt + tokens)
    expected = full[len(prompt) - 1:len(prompt) - 1 + len(tokens)]
    assert len(logits) == len(tokens)
    torch.testing.assert_close(torch.stack(logits), expected, atol=TOL, rtol=0)


def test_prefill_then_decode_logits_match(checkpoint: tuple[Path, torch.nn.Module]) -> None:
    folder, reference = checkpoint
    out, = engine_for(folder).generate([PROMPTS[2]], SamplingParams(max_tokens=6))
    assert_logits_match(reference, PROMPTS[2], out.token_ids, out.logits)  # row 0: prefill; rows 1-5: decode


def test_batched_decode_of_different_lengths_matches(checkpoint: tuple[Path, torch.nn.Module]) -> None:
    folder, reference = checkpoint
    # A budget of 16 tokens splits the long prompts into chunks that ride along with the others' decodes.
    engine = engine_for(folder, max_batch=4, token_budget=16)
    outputs = engine.generate(PROMPTS, SamplingParams(max_tokens=8))
    for prompt, out in zip(PROMPTS, outputs, strict=True):
        assert_logits_match(reference, prompt, out.token_ids, out.logits)
    one_at_a_time = sum(-(-len(p) // 16) + 7 for p in PROMPTS)
    assert engine.steps < one_at_a_time  # sequences shared steps


def test_greedy_generation_equals_transformers_generate(checkpoint: tuple[Path, torch.nn.Module]) -> None:
    folder, reference = checkpoint
    engine = engine_for(folder, max_batch=1)
    for prompt in PROMPTS[:3]:
        out, = engine.generate([prompt], SamplingParams(max_tokens=12))
        with torch.inference_mode():
            expected = reference.generate(torch.tensor([prompt]), max_new_tokens=12, do_sample=False,
                                          attention_mask=torch.ones(1, len(prompt), dtype=torch.long))
        assert out.token_ids == expected[0, len(prompt):].tolist()
        assert out.finish_reason == "length" and not out.random_weights


def test_split_prefill_and_decode_match_unified(checkpoint: tuple[Path, torch.nn.Module]) -> None:
    folder, _ = checkpoint
    unified = engine_for(folder).generate(PROMPTS, SamplingParams(max_tokens=6))
    prefill, decode = engine_for(folder, role="prefill"), engine_for(folder, role="decode")
    firsts = prefill.generate(PROMPTS, SamplingParams(max_tokens=6))
    moved = []
    for first in firsts:
        header, tensors = prefill.export_kv(first.request_id)
        assert header["length"] == len(first.prompt_token_ids) and tensors["k"].shape[1] == header["length"]
        moved.append((first, decode.import_kv(header, tensors, SamplingParams(max_tokens=6))))
    assert prefill.block_manager.num_free_blocks == prefill.num_blocks  # exporting freed the blocks
    while decode.has_unfinished():
        decode.step()
    for want, (first, request_id) in zip(unified, moved, strict=True):
        got = decode.output(request_id)
        assert got.token_ids == want.token_ids
        assert decode.prefill_tokens_computed == 0
        torch.testing.assert_close(torch.stack(first.logits + got.logits), torch.stack(want.logits),
                                   atol=TOL, rtol=0)


def test_kv_import_refuses_another_model(checkpoint: tuple[Path, torch.nn.Module]) -> None:
    folder, _ = checkpoint
    prefill = engine_for(folder, role="prefill")
    first, = prefill.generate([PROMPTS[0]], SamplingParams(max_tokens=4))
    header, tensors = prefill.export_kv(first.request_id)
    with pytest.raises(ValueError, match="num_layers is 3, here 2"):
        engine_for(folder, role="decode").import_kv({**header, "num_layers": 3}, tensors)
