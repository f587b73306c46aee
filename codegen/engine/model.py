"""The decoder-only transformer (Llama 3.x, Qwen 2.5) over a paged KV cache, with tensor-parallel splits.

Weights are laid out as nano-vllm does: q, k and v fused in one column-parallel matrix, gate and up
in another; o and down are row-parallel and their partial sums meet in an all-reduce in the replica's
own process group. Embeddings and the LM head are replicated (they are small beside the layers at
the degrees a CPU or one node runs). Numerics follow transformers' modeling_llama/qwen2 so logits
match them in fp32: RMSNorm in fp32, rotate-half rope computed in fp32, SDPA with scale 1/sqrt(head_dim).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from plait.codegen.engine.config import ModelConfig


@dataclass
class PrefillSpan:
    """A sequence computing more than one token this step: rows [start, end) of the flattened batch."""

    start: int
    end: int
    context_blocks: torch.Tensor | None  # its block table; None: no earlier context, attend to fresh k/v
    mask: torch.Tensor | None  # [tokens, context] bool, True = may attend


@dataclass
class AttentionPlan:
    """Where this step's keys and values go and what each query reads. Shared by every layer.

    Decodes (one query each) come first in the batch: rows [0, num_decodes). They read their context
    gathered block by block into one buffer padded to the longest context in whole blocks, with a mask
    for the padding.
    """

    slot_mapping: torch.Tensor  # [tokens]: cache slot (block * block_size + offset) for each new key/value
    num_decodes: int
    decode_blocks: torch.Tensor | None  # [decodes, blocks of the longest]: block tables padded with block 0
    decode_mask: torch.Tensor | None  # [decodes, 1, 1, blocks * block_size]
    prefills: list[PrefillSpan]
    # Where decodes gather keys and values: [decodes * blocks, block_size, kv heads, d] each, made once per
    # step and reused by every layer (fresh buffers of this size per layer are mmapped, page-faulted and
    # unmapped every time: a 64-sequence decode at context 512 ran 3x slower that way).
    gather_buffers: tuple[torch.Tensor, torch.Tensor] | None = None


def gather(cache: torch.Tensor, blocks: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """[..., n blocks] block ids -> [..., kv heads, n * block_size, d]: a block table's keys or values in order."""
    got = torch.index_select(cache, 0, blocks.flatten(), out=out) if out is not None else cache[blocks.flatten()]
    return got.view(*blocks.shape[:-1], -1, *cache.shape[2:]).transpose(-3, -2)


# Attention reads paged KV by gathering whole blocks (one index per block, not per token) into a buffer
# padded to the longest context, then torch's SDPA; chosen by measurement (bench/engine_attention.py, this
# 2-core CPU, one thread, 12/4 heads, context 512, one layer): 16 decodes took 6.0 ms gathered against
# 19.9 ms for compiled FlexAttention over the whole cache with a block mask (26.8 ms with rebuilding the
# mask, which block tables that grow every step need); at one decode FlexAttention's 0.17 ms beat 0.28 ms,
# but rebuilding its mask cost 6 ms, and its first call compiles for seconds.
def paged_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, k_cache: torch.Tensor,
                    v_cache: torch.Tensor, plan: AttentionPlan, scale: float) -> torch.Tensor:
    """q [T, heads, d]; k, v [T, kv heads, d]; caches [blocks, block_size, kv heads, d]. Returns [T, heads, d]."""
    k_cache.flatten(0, 1).index_copy_(0, plan.slot_mapping, k)
    v_cache.flatten(0, 1).index_copy_(0, plan.slot_mapping, v)
    out = torch.empty_like(q)
    n = plan.num_decodes
    if n:
        assert plan.decode_blocks is not None
        k_out, v_out = plan.gather_buffers or (None, None)
        o = F.scaled_dot_product_attention(q[:n].unsqueeze(2), gather(k_cache, plan.decode_blocks, k_out),
                                           gather(v_cache, plan.decode_blocks, v_out), attn_mask=plan.decode_mask,
                                           scale=scale, enable_gqa=True)
        out[:n] = o.squeeze(2)
    for span in plan.prefills:
        qs = q[span.start:span.end].transpose(0, 1).unsqueeze(0)  # [1, heads, tokens, d]
        if span.context_blocks is None:
            ks, vs = k[span.start:span.end].transpose(0, 1), v[span.start:span.end].transpose(0, 1)
        else:
            assert span.mask is not None
            context = span.mask.shape[1]
            ks = gather(k_cache, span.context_blocks)[:, :context]
            vs = gather(v_cache, span.context_blocks)[:, :context]
        o = F.scaled_dot_product_attention(qs, ks.unsqueeze(0), vs.unsqueeze(0), attn_mask=span.mask,
                                           is_causal=span.context_blocks is None, scale=scale, enable_gqa=True)
        out[span.start:span.end] = o[0].transpose(0, 1)
    return out


class RMSNorm(nn.Module):
    def __init__(self, size: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * h.to(x.dtype)


def rope_inv_freq(config: ModelConfig) -> torch.Tensor:
    """Inverse rope frequencies (float32), with Llama 3.1's scaling of the long wavelengths when configured."""
    dim = config.head_dim
    inv_freq = 1.0 / (config.rope_theta ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
    scaling = config.rope_scaling or {}
    if scaling.get("rope_type", scaling.get("type")) != "llama3":
        return inv_freq
    factor, low, high = scaling["factor"], scaling["low_freq_factor"], scaling["high_freq_factor"]
    old_context = scaling["original_max_position_embeddings"]
    low_wavelen, high_wavelen = old_context / low, old_context / high
    wavelen = 2 * math.pi / inv_freq
    scaled = torch.where(wavelen > low_wavelen, inv_freq / factor, inv_freq)
    smooth = (old_context / wavelen - low) / (high - low)
    smoothed = (1 - smooth) * scaled / factor + smooth * scaled
    is_medium = ~(wavelen < high_wavelen) * ~(wavelen > low_wavelen)
    return torch.where(is_medium, smoothed, scaled)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class TensorParallel:
    """This rank's place in its replica's tensor-parallel group (degree 1: no group)."""

    def __init__(self, group: dist.ProcessGroup | None = None) -> None:
        self.group = group
        self.rank = dist.get_rank(group) if group is not None else 0
        self.size = dist.get_world_size(group) if group is not None else 1

    def all_reduce(self, x: torch.Tensor) -> torch.Tensor:
        if self.size > 1:
            dist.all_reduce(x, group=self.group)
        return x

    def split(self, total: int, what: str) -> int:
        if total % self.size:
            raise ValueError(f"{what}={total} does not divide by the tensor-parallel degree {self.size}. "
                             "To fix: pick a degree that divides the model's heads, KV heads and MLP width")
        return total // self.size


class DecoderLayer(nn.Module):
    def __init__(self, config: ModelConfig, tp: TensorParallel) -> None:
        super().__init__()
        self.tp = tp
        self.heads = tp.split(config.num_heads, "num_heads")
        self.kv_heads = tp.split(config.num_kv_heads, "num_kv_heads")
        self.head_dim = config.head_dim
        self.scale = config.head_dim ** -0.5
        self.ffn = ffn = tp.split(config.intermediate_size, "intermediate_size")
        qkv = (self.heads + 2 * self.kv_heads) * self.head_dim
        self.attn_norm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.qkv = nn.Linear(config.hidden_size, qkv, bias=config.attention_bias)
        self.o = nn.Linear(self.heads * self.head_dim, config.hidden_size, bias=False)
        self.mlp_norm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.gate_up = nn.Linear(config.hidden_size, 2 * ffn, bias=False)
        self.down = nn.Linear(ffn, config.hidden_size, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, plan: AttentionPlan,
                k_cache: torch.Tensor, v_cache: torch.Tensor) -> torch.Tensor:
        tokens = x.shape[0]
        q, k, v = self.qkv(self.attn_norm(x)).split(
            [self.heads * self.head_dim, self.kv_heads * self.head_dim, self.kv_heads * self.head_dim], dim=-1)
        q = q.view(tokens, self.heads, self.head_dim)
        k = k.view(tokens, self.kv_heads, self.head_dim)
        v = v.view(tokens, self.kv_heads, self.head_dim)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        attn = paged_attention(q, k, v, k_cache, v_cache, plan, self.scale)
        x = x + self.tp.all_reduce(self.o(attn.reshape(tokens, -1)))
        h = self.mlp_norm(x)
        if tokens == 1:
            gate, up = self.gate_up(h).chunk(2, dim=-1)
        else:  # two halves of the same weight: from 16 rows on, MKL ran them 5-13 % faster than one fused product
            gate, up = F.linear(h, self.gate_up.weight[:self.ffn]), F.linear(h, self.gate_up.weight[self.ffn:])
        return x + self.tp.all_reduce(self.down(F.silu(gate) * up))


class Transformer(nn.Module):
    """Token ids and positions of one step's flattened batch in, logits of the rows that sample out."""

    def __init__(self, config: ModelConfig, tp_group: dist.ProcessGroup | None = None) -> None:
        super().__init__()
        self.config = config
        self.tp = TensorParallel(tp_group)
        self.random_weights = False  # set by weights.random_model: every output must say so
        self.embed = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(DecoderLayer(config, self.tp) for _ in range(config.num_layers))
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.lm_head = None if config.tie_word_embeddings else nn.Linear(config.hidden_size, config.vocab_size,
                                                                          bias=False)
        self.inv_freq = rope_inv_freq(config)

    @property
    def kv_heads_per_rank(self) -> int:
        return self.config.num_kv_heads // self.tp.size

    def forward(self, input_ids: torch.Tensor, positions: torch.Tensor, plan: AttentionPlan,
                kv_caches: list[tuple[torch.Tensor, torch.Tensor]], logit_rows: torch.Tensor) -> torch.Tensor:
        x = self.embed(input_ids)
        freqs = positions.float()[:, None] * self.inv_freq.to(x.device)[None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos().to(x.dtype).unsqueeze(1), emb.sin().to(x.dtype).unsqueeze(1)
        for layer, (k_cache, v_cache) in zip(self.layers, kv_caches, strict=True):
            x = layer(x, cos, sin, plan, k_cache, v_cache)
        h = self.norm(x[logit_rows])
        weight = self.embed.weight if self.lm_head is None else self.lm_head.weight
        return F.linear(h, weight).float()
