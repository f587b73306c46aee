"""The paged KV cache: exact block ids, prefix reuse by hash chain, LRU eviction, preemption and recompute."""

from __future__ import annotations

import pytest
import torch
from _engine_models import one_thread  # noqa: F401

from plait.codegen.engine import LLMEngine, ModelConfig, SamplingParams, random_model
from plait.codegen.engine.block_manager import BlockManager
from plait.codegen.engine.sampling import SamplingParams as Params
from plait.codegen.engine.sequence import Sequence

TINY = ModelConfig(arch="llama", vocab_size=128, hidden_size=32, intermediate_size=64, num_layers=2, num_heads=4,
                   num_kv_heads=2, head_dim=8, max_position_embeddings=256, name="tiny")

pytestmark = pytest.mark.usefixtures("one_thread")  # imported above: pytest finds fixtures by name


def seq(request_id: int, tokens: list[int]) -> Sequence:
    return Sequence(request_id, list(tokens), len(tokens), Params())


def admit(manager: BlockManager, s: Sequence) -> list[int]:
    """Allocate like the scheduler does, mark the prompt computed, key its full blocks; returns the hits."""
    hits = manager.prefix_hits(s)
    assert manager.can_allocate(s, hits)
    manager.allocate(s, hits)
    s.num_computed_tokens = s.num_tokens
    manager.register_full_blocks(s)
    return hits


def test_blocks_are_shared_by_prefix_and_evicted_least_recently_used() -> None:
    manager = BlockManager(num_blocks=6, block_size=4)
    a = seq(0, list(range(10)))  # blocks [0-3] [4-7] [8 9]
    assert admit(manager, a) == [] and a.block_table == [0, 1, 2]
    b = seq(1, list(range(8)) + [50, 51, 52])  # shares a's two full blocks
    assert admit(manager, b) == [0, 1] and b.block_table == [0, 1, 3]
    assert manager.blocks[0].ref_count == 2 and manager.num_free_blocks == 2
    manager.free_sequence(a)
    manager.free_sequence(b)
    # Unkeyed tails (2, 3) are evicted first; then the keyed ones, least recently freed first.
    assert list(manager.free) == [3, 2, 4, 5, 1, 0]
    c = seq(2, [99] * 20)  # five blocks: takes 3, 2, 4, 5 and evicts cached block 1, then 0
    assert admit(manager, c) == [] and c.block_table == [3, 2, 4, 5, 1]
    d = seq(3, list(range(8)) + [7])
    assert manager.prefix_hits(d) == [0]  # block 1 ([4-7] after [0-3]) was evicted; [0-3] survives
    assert not manager.can_allocate(d, [0])  # reviving block 0 takes the one free block; two more are needed


def test_the_last_prompt_token_is_always_computed() -> None:
    manager = BlockManager(num_blocks=4, block_size=4)
    admit(manager, seq(0, list(range(8))))
    again = seq(1, list(range(8)))
    assert manager.prefix_hits(again) == [0]  # not [0, 1]: the last block holds the token whose logits we need


def test_a_hash_collision_is_not_a_hit(monkeypatch: pytest.MonkeyPatch) -> None:
    import plait.codegen.engine.block_manager as bm
    monkeypatch.setattr(bm, "chain_key", lambda parent, tokens: 7)  # every block collides
    manager = BlockManager(num_blocks=4, block_size=4)
    admit(manager, seq(0, [1, 2, 3, 4, 5]))
    assert manager.prefix_hits(seq(1, [9, 9, 9, 9, 5])) == []


def tiny_engine(**kwargs: object) -> LLMEngine:
    model = random_model(TINY, seed=3)
    return LLMEngine(model, TINY, **{"block_size": 4, "num_blocks": 64, "keep_logits": True, **kwargs})


def test_a_second_call_sharing_a_prefix_computes_only_its_new_tokens() -> None:
    engine = tiny_engine()
    first_prompt = list(range(1, 42))
    first, = engine.generate([first_prompt], SamplingParams(max_tokens=9))
    assert engine.prefill_tokens_computed == 41
    # A ReAct loop's next call: the last prompt, the model's answer, then a tool's observation.
    second_prompt = first_prompt + first.token_ids + [7, 8, 9, 10, 11]
    second, = engine.generate([second_prompt], SamplingParams(max_tokens=4))
    cached = 12 * 4  # 41 prompt + 9 answer tokens: 12 full blocks hold KV (the 50th token was never computed)
    assert engine.prefix_hit_tokens == cached
    assert engine.prefill_tokens_computed - 41 == len(second_prompt) - cached
    fresh, = tiny_engine(enable_prefix_reuse=False).generate([second_prompt], SamplingParams(max_tokens=4))
    assert second.token_ids == fresh.token_ids
    torch.testing.assert_close(torch.stack(second.logits), torch.stack(fresh.logits), atol=1e-5, rtol=0)


def test_preemption_when_blocks_run_out_keeps_the_outputs() -> None:
    prompts = [[i + 1] * 7 + [i + 2] for i in range(4)]  # 2 blocks each; 14 tokens later, 6 blocks each
    params = SamplingParams(max_tokens=16)
    roomy = tiny_engine(max_batch=4, enable_prefix_reuse=False).generate(prompts, params)
    tight = tiny_engine(max_batch=4, num_blocks=14, enable_prefix_reuse=False)
    squeezed = tight.generate(prompts, params)
    assert tight.preemptions > 0
    assert tight.prefill_tokens_computed > sum(map(len, prompts))  # preempted sequences were recomputed
    for want, got in zip(roomy, squeezed, strict=True):
        assert got.token_ids == want.token_ids
        torch.testing.assert_close(torch.stack(got.logits), torch.stack(want.logits), atol=1e-5, rtol=0)
    assert tight.block_manager.num_free_blocks == 14


def test_a_request_larger_than_the_cache_is_refused() -> None:
    with pytest.raises(ValueError, match="needs more KV blocks than the whole cache holds"):
        tiny_engine(num_blocks=4).add_request(list(range(1, 15)), SamplingParams(max_tokens=8))
