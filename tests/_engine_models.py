"""Tiny reference models built with transformers for the engine tests, and the tensor-parallel worker.

Three shapes the engine must run like transformers does: a Llama with llama3 rope scaling and
grouped-query attention, a Llama with tied embeddings, and a Qwen2 with its q/k/v biases.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from plait.codegen.engine import LLMEngine, SamplingParams, load_checkpoint

ROPE_LLAMA3 = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
               "original_max_position_embeddings": 32}
SHAPE = {"vocab_size": 256, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
         "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 512,
         "initializer_range": 0.08, "bos_token_id": None}  # a wider init than 0.02: peaked logits, no greedy ties
MODELS = ("llama3-gqa", "llama-tied", "qwen2-bias")


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Run a test's tiny models on one thread: on the shared 2-core machines a second thread waits for the
    busier core, and tiny ops ran several times slower that way."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def build_reference(kind: str, folder: Path) -> torch.nn.Module:
    """Build one reference model with seeded random weights, save it with save_pretrained, return it."""
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(MODELS.index(kind))
    if kind == "llama3-gqa":
        model = LlamaForCausalLM(LlamaConfig(**SHAPE, rope_scaling=ROPE_LLAMA3, eos_token_id=None))
    elif kind == "llama-tied":
        model = LlamaForCausalLM(LlamaConfig(**{**SHAPE, "num_key_value_heads": 1}, tie_word_embeddings=True,
                                             eos_token_id=None))
    else:
        model = Qwen2ForCausalLM(Qwen2Config(**SHAPE, eos_token_id=None))
        with torch.no_grad():  # transformers starts biases at zero; random ones make the test see them
            for name, p in model.named_parameters():
                if name.endswith("_proj.bias"):
                    p.normal_(0, 0.5)
    model.eval()
    model.save_pretrained(folder)
    return model


def reference_logits(model: torch.nn.Module, token_ids: list[int]) -> torch.Tensor:
    """transformers' logits at every position of token_ids, float32."""
    with torch.inference_mode():
        return model(torch.tensor([token_ids])).logits[0].float()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tensor_parallel_worker(rank: int, world: int, port: int, folders: list[str], prompts: list[list[int]],
                           out: str) -> None:
    """One rank of a degree-`world` replica on Gloo: load its shards, generate greedily, rank 0 saves logits."""
    import torch.distributed as dist

    torch.set_num_threads(1)
    store = dist.TCPStore("127.0.0.1", port, world, is_master=rank == 0)
    dist.init_process_group("gloo", store=store, rank=rank, world_size=world)
    group = dist.new_group(list(range(world)))  # the replica's own group, as a pool of replicas would make
    results = {}
    for folder in folders:
        config, model = load_checkpoint(folder, tp_group=group)
        engine = LLMEngine(model, config, block_size=4, num_blocks=64, max_batch=4, token_budget=16,
                           tp_group=group, keep_logits=True)
        outputs = engine.generate(prompts, SamplingParams(max_tokens=5))
        results[folder] = [(o.token_ids, torch.stack(o.logits)) for o in outputs]
    if rank == 0:
        torch.save(results, out)
    dist.destroy_process_group()
