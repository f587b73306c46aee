"""Tensor parallelism at degree 2 (two processes on Gloo) equals degree 1 within 1e-4."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

pytest.importorskip("transformers")

from _engine_models import build_reference, free_port, one_thread, tensor_parallel_worker  # noqa: E402, F401

from plait.codegen.engine import LLMEngine, SamplingParams, load_checkpoint  # noqa: E402

PROMPTS = [[5, 17, 99, 4, 4, 8], list(range(40, 61)), [9]]

pytestmark = pytest.mark.usefixtures("one_thread")  # imported above: pytest finds fixtures by name


def test_degree_two_equals_degree_one(tmp_path: Path) -> None:
    folders = []
    for kind in ("llama3-gqa", "qwen2-bias"):  # column-split biases ride along in the qwen2
        build_reference(kind, tmp_path / kind)
        folders.append(str(tmp_path / kind))
    out = tmp_path / "rank0.pt"
    mp.spawn(tensor_parallel_worker, args=(2, free_port(), folders, PROMPTS, str(out)), nprocs=2, join=True)
    sharded = torch.load(out)
    for folder in folders:
        config, model = load_checkpoint(folder)
        engine = LLMEngine(model, config, block_size=4, num_blocks=64, max_batch=4, token_budget=16,
                           keep_logits=True)
        whole = engine.generate(PROMPTS, SamplingParams(max_tokens=5))
        for want, (tokens, logits) in zip(whole, sharded[folder], strict=True):
            assert tokens == want.token_ids
            torch.testing.assert_close(logits, torch.stack(want.logits), atol=1e-4, rtol=0)

