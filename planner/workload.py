"""Operator descriptors and their work: FLOPs, bytes moved, kernel launches and memory footprint.

Everything here is counted from the catalog's architecture figures; nothing is typed in. Pure functions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from plait.planner.catalog import DTYPE_BYTES, CatalogError, ModelSpec, StackSpec, VocoderSpec

OpKind = Literal["tokenize", "detokenize", "py_call", "prefill", "decode", "encode", "ann_search", "vocode"]
OP_KINDS: tuple[str, ...] = ("tokenize", "detokenize", "py_call", "prefill", "decode", "encode", "ann_search", "vocode")
MODEL_OPS = ("prefill", "decode", "encode", "vocode")
HOST_OPS = ("tokenize", "detokenize", "py_call")


class OpSpec(BaseModel):
    """One operator of the `op` dialect, as the cost model sees it (batch, mode and degree are separate)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    op: OpKind
    model: str | None = Field(default=None, description="catalog model (prefill, decode, encode, vocode)")
    tokens: int | None = Field(default=None, ge=1, description="prefill: prompt tokens; encode: sequence length; "
                                                       "tokenize/detokenize: tokens per item")
    ctx: int | None = Field(default=None, ge=0, description="decode: tokens already in the KV cache")
    cached_tokens: int = Field(default=0, ge=0, description="prefill: leading prompt tokens whose KV cache is "
                                                          "reused (prefix reuse): read, not computed")
    cross_tokens: int | None = Field(default=None, ge=0, description="encoder-output length a cross-attending decoder reads")
    n: int | None = Field(default=None, ge=1, description="ann_search: vectors in the index")
    dim: int | None = Field(default=None, ge=1, description="ann_search: vector size")
    k: int = Field(default=10, ge=1, description="ann_search: neighbours returned")
    index: Literal["flat", "ivf"] = Field(default="flat", description="ann_search: brute force or inverted file")
    nlist: int | None = Field(default=None, ge=1, description="ivf: clusters (default 4 * sqrt(n))")
    nprobe: int = Field(default=16, ge=1, description="ivf: clusters scanned per query")
    audio_seconds: float | None = Field(default=None, gt=0, description="vocode: seconds of audio per item")
    cpu_seconds: float | None = Field(default=None, ge=0, description="py_call: one call's work on one core, seconds")


@dataclass(frozen=True)
class Work:
    """What one execution of an op (a whole batch) does, before parallelism."""

    flops: float = 0.0
    bytes: float = 0.0          # bytes moved to and from device memory
    kv_read: float = 0.0        # part of `bytes` that reads the KV cache (moves to the host link if offloaded)
    kernels: int = 0
    weight_bytes: float = 0.0   # resident weights
    kv_bytes: float = 0.0       # resident KV cache for the batch
    act_bytes: float = 0.0      # transient workspace
    kv_out: float = 0.0         # bytes a prefill hands to decode (its KV cache)
    layers: int = 0             # for collectives under tensor parallelism
    collective_bytes: float = 0.0  # activation bytes reduced per all-reduce
    attn_flops: float = 0.0     # part of `flops` in attention (QK^T and PV), which runs below matmul efficiency
    act_traffic: float = 0.0    # part of `bytes` the elementwise kernels (norms, rotary, activation, adds) move
    moe_dispatch_bytes: float = 0.0  # bytes each MoE layer sends to experts (expert parallelism)
    dtype: str = "bf16"
    host_seconds: float = 0.0   # host-CPU work (tokenize, py_call), one core
    fixed: bool = True          # charge the per-call fixed cost (False for per-kernel micro-benchmarks)


# ---------------------------------------------------------------- parameter counts


@lru_cache(maxsize=256)   # pure in (frozen spec, role) and called for every candidate a planner costs
def layer_params(s: StackSpec, role: Literal["decoder", "encoder"]) -> dict[str, int]:
    """Parameters of one layer by part. `matmul_active` is what one token multiplies through."""
    d, h, kv, hd = s.d_model, s.heads, s.n_kv, s.hd
    attn = d * h * hd + 2 * d * kv * hd + h * hd * d
    cross = attn if s.cross_attention else 0
    gated = s.mlp in ("swiglu", "gated-gelu")
    mlp = (3 if gated else 2) * d * s.ffn
    router = d * s.experts if s.experts > 1 else 0
    bias = 0
    if s.bias in ("qkv", "all"):
        bias += (h + 2 * kv) * hd
    if s.bias == "all":
        bias += d + ((h + 2 * kv) * hd + d if s.cross_attention else 0)
        bias += ((2 if gated else 1) * s.ffn + d) * s.experts
    norms = (2 + (1 if s.cross_attention else 0)) * (2 * d if s.norm == "layernorm" else d)
    total = attn + cross + mlp * s.experts + router + bias + norms
    active = attn + cross + mlp * s.experts_per_token + router
    return {"attn": attn, "cross": cross, "mlp_expert": mlp, "router": router, "bias": bias, "norms": norms,
            "total": total, "matmul_active": active}


@lru_cache(maxsize=256)
def stack_params(s: StackSpec, role: Literal["decoder", "encoder"]) -> dict[str, int]:
    """Parameters of a whole stack: layers, embeddings, LM head, final norm, audio front end."""
    lp = layer_params(s, role)
    d = s.d_model
    embed = s.vocab * d * s.codebooks + s.positions * d
    head = 0 if (role == "encoder" or s.tied_embeddings) else s.vocab * d * s.codebooks
    final_norm = 2 * d if s.norm == "layernorm" else d
    frontend = (s.audio_mels * d * 3 + d + d * d * 3 + d) if s.audio_mels else 0
    layers = lp["total"] * s.layers
    return {"layers": layers, "embed": embed, "head": head, "final_norm": final_norm, "frontend": frontend,
            "total": layers + embed + head + final_norm + frontend}


def kv_bytes_per_token(s: StackSpec, dtype: str) -> int:
    """Self-attention KV cache bytes per token: 2 (K and V) x layers x kv_heads x head_dim x dtype bytes."""
    return 2 * s.layers * s.n_kv * s.hd * DTYPE_BYTES[dtype]


def kv_cache_bytes(model: ModelSpec, tokens: int, batch: int = 1, cross_tokens: int | None = None) -> int:
    """KV cache of `batch` sequences of `tokens` tokens (plus cross-attention K/V): what prefill hands decode."""
    s = _stack(model, "decoder", "prefill")
    x = s.cross_tokens if cross_tokens is None else cross_tokens
    cross = kv_bytes_per_token(s, model.dtype) * x if s.cross_attention else 0
    return batch * (kv_bytes_per_token(s, model.dtype) * tokens + cross)


def kernels_per_layer(s: StackSpec, role: Literal["decoder", "encoder"], routed: int = 0) -> int:
    """Kernel launches of one layer in the reference implementation (unfused PyTorch, as calibrated).

    norms 2, qkv 1, rotary 1, K and V cache writes 2 (decoders), attention 1, output 1, residual adds 2, MLP 3
    (gate-up, activation, down); cross-attention adds norm, q, attention, output, add (5); MoE adds router,
    top-k, gather, scatter (4) and two GEMMs per routed expert beyond the first.
    """
    n = 2 + 1 + 1 + 1 + 2 + 3
    n += 1 if (s.rotary and role == "decoder") else 0
    n += 2 if role == "decoder" else 0
    n += 5 if s.cross_attention else 0
    if s.experts > 1:
        n += 4 + 2 * max(0, routed - 1)
    return n


def _stack(model: ModelSpec, which: Literal["decoder", "encoder"], op: str) -> StackSpec:
    s = model.decoder if which == "decoder" else model.encoder
    if s is None:
        has = [k for k in ("decoder", "encoder", "vocoder") if getattr(model, k) is not None]
        fix = {"decoder": "prefill/decode", "encoder": "encode", "vocoder": "vocode"}
        raise CatalogError(f"model {model.name!r} has no {which}, so it cannot run op {op!r}.\n"
                           f"To fix: use op {' or '.join(fix[h] for h in has)} with it, or another model.")
    return s


def _distinct_experts(s: StackSpec, picks: float) -> float:
    """Expected experts touched in a layer when `picks` token-to-expert routings land uniformly."""
    if s.experts == 1:
        return 1.0
    e, k = s.experts, s.experts_per_token
    return e * (1.0 - (1.0 - k / e) ** max(picks / k, 0.0))


def _weights_read(s: StackSpec, role: Literal["decoder", "encoder"], picks: float, eb: int) -> float:
    lp = layer_params(s, role)
    sp = stack_params(s, role)
    touched = lp["total"] - lp["mlp_expert"] * (s.experts - _distinct_experts(s, picks))
    head_read = sp["head"] if sp["head"] else (s.vocab * s.d_model * s.codebooks if role == "decoder" else 0)
    return (touched * s.layers + head_read + sp["final_norm"] + sp["frontend"]) * eb


def _act_traffic(s: StackSpec, tokens: float, eb: int) -> float:
    """Elementwise activation reads and writes: about 10 x d_model + 3 x active ffn values per token per layer."""
    return tokens * s.layers * (10 * s.d_model + 3 * s.ffn * s.experts_per_token) * eb


def _workspace(s: StackSpec, tokens: float, eb: int, logits_rows: float) -> float:
    return tokens * (2 * s.ffn * s.experts_per_token + 4 * s.d_model) * eb + logits_rows * s.vocab * s.codebooks * 4


# ---------------------------------------------------------------- per-op work


def prefill_work(model: ModelSpec, batch: int, tokens: int, cross_tokens: int | None = None,
                 cached_tokens: int = 0) -> Work:
    """One forward pass over `tokens` prompt tokens for `batch` sequences; logits for the last position only.

    With `cached_tokens` (prefix reuse), the KV cache of the first `cached_tokens` positions is read from
    the cache instead of computed: only the other positions run through the layers, attending to all.
    """
    s = _stack(model, "decoder", "prefill")
    eb = DTYPE_BYTES[model.dtype]
    lp = layer_params(s, "decoder")
    x = (s.cross_tokens if cross_tokens is None else cross_tokens) if s.cross_attention else 0
    cached = min(max(cached_tokens, 0), tokens - 1)     # the last prompt token is always computed
    bt = batch * (tokens - cached)
    lin = 2 * lp["matmul_active"] * bt * s.layers
    pairs = (tokens * (tokens + 1) - cached * (cached + 1)) / 2    # causal: each new position sees all before it
    attn = 4 * s.heads * s.hd * batch * pairs * s.layers
    cross = (4 * s.heads * s.hd * bt * x + 4 * s.d_model * s.n_kv * s.hd * batch * x) * s.layers
    head = 2 * s.vocab * s.d_model * s.codebooks * batch
    kvpt = kv_bytes_per_token(s, model.dtype)
    kv = batch * (kvpt * tokens + kvpt * x)
    kv_read = batch * kvpt * cached
    sp = stack_params(s, "decoder")
    routed = int(round(_distinct_experts(s, bt * s.experts_per_token)))
    return Work(
        flops=lin + attn + cross + head, kv_read=kv_read, attn_flops=attn + cross, act_traffic=_act_traffic(s, bt, eb),
        bytes=_weights_read(s, "decoder", bt * s.experts_per_token, eb) + kv + _act_traffic(s, bt, eb),
        kernels=s.layers * kernels_per_layer(s, "decoder", routed) + 3,
        weight_bytes=sp["total"] * eb, kv_bytes=kv, act_bytes=_workspace(s, bt, eb, batch), kv_out=kv,
        layers=s.layers, collective_bytes=bt * s.d_model * eb,
        moe_dispatch_bytes=bt * s.experts_per_token * s.d_model * eb if s.experts > 1 else 0.0, dtype=model.dtype)


def decode_work(model: ModelSpec, batch: int, ctx: int, cross_tokens: int | None = None) -> Work:
    """One decode step: `batch` sequences each add one token after `ctx` cached tokens."""
    s = _stack(model, "decoder", "decode")
    eb = DTYPE_BYTES[model.dtype]
    lp = layer_params(s, "decoder")
    x = (s.cross_tokens if cross_tokens is None else cross_tokens) if s.cross_attention else 0
    lin = 2 * lp["matmul_active"] * batch * s.layers
    attn = 4 * s.heads * s.hd * batch * (ctx + 1) * s.layers
    cross = 4 * s.heads * s.hd * batch * x * s.layers
    head = 2 * s.vocab * s.d_model * s.codebooks * batch
    kvpt = kv_bytes_per_token(s, model.dtype)
    kv_read = batch * kvpt * (ctx + 1 + x)
    sp = stack_params(s, "decoder")
    routed = int(round(_distinct_experts(s, batch * s.experts_per_token)))
    return Work(
        flops=lin + attn + cross + head, attn_flops=attn + cross, act_traffic=_act_traffic(s, batch, eb),
        bytes=_weights_read(s, "decoder", batch * s.experts_per_token, eb) + kv_read + batch * kvpt
        + _act_traffic(s, batch, eb),
        kv_read=kv_read,
        kernels=s.layers * kernels_per_layer(s, "decoder", routed) + 3,
        weight_bytes=sp["total"] * eb, kv_bytes=batch * kvpt * (ctx + 1 + x), act_bytes=_workspace(s, batch, eb, batch),
        layers=s.layers, collective_bytes=batch * s.d_model * eb,
        moe_dispatch_bytes=batch * s.experts_per_token * s.d_model * eb if s.experts > 1 else 0.0, dtype=model.dtype)


def encode_work(model: ModelSpec, batch: int, tokens: int | None = None) -> Work:
    """An encoder forward (bidirectional attention) over `batch` sequences of `tokens` tokens."""
    s = _stack(model, "encoder", "encode")
    eb = DTYPE_BYTES[model.dtype]
    t = tokens or s.default_tokens
    lp = layer_params(s, "encoder")
    bt = batch * t
    lin = 2 * lp["matmul_active"] * bt * s.layers
    attn = 4 * s.heads * s.hd * batch * t * t * s.layers
    frontend = 0.0
    if s.audio_mels:   # whisper: conv(k3) mels->d over 2t frames, conv(k3, stride 2) d->d over t frames
        frontend = batch * (2 * s.audio_mels * s.d_model * 3 * 2 * t + 2 * s.d_model * s.d_model * 3 * t)
    sp = stack_params(s, "encoder")
    return Work(
        flops=lin + attn + frontend, attn_flops=attn, act_traffic=_act_traffic(s, bt, eb),
        bytes=sp["total"] * eb - s.vocab * s.d_model * eb + bt * s.d_model * eb + _act_traffic(s, bt, eb),
        kernels=s.layers * kernels_per_layer(s, "encoder") + 3 + (2 if s.audio_mels else 0),
        weight_bytes=sp["total"] * eb, act_bytes=_workspace(s, bt, eb, 0) + batch * s.heads * t * t * eb,
        layers=s.layers, collective_bytes=bt * s.d_model * eb, dtype=model.dtype)


def vocoder_layers(v: VocoderSpec) -> list[tuple[int, int, int, int, float]]:
    """(in_ch, out_ch, kernel, taps per output sample, output samples per audio second) of every conv.

    DAC decoder: conv(latent -> decoder_dim, k) at the frame rate, then per upsampling block a transposed
    conv (kernel 2 x stride, so 2 taps per output sample) halving the channels, and `residual_units` units of
    conv(k) + conv(1); a final conv(k) to one channel.
    """
    rate = v.sample_rate / math.prod(v.upsample_rates)
    convs: list[tuple[int, int, int, int, float]] = [(v.latent_dim, v.decoder_dim, v.kernel, v.kernel, rate)]
    ch = v.decoder_dim
    for stride in v.upsample_rates:
        out, rate = ch // 2, rate * stride
        convs.append((ch, out, 2 * stride, 2, rate))
        for _ in range(v.residual_units):
            convs += [(out, out, v.kernel, v.kernel, rate), (out, out, 1, 1, rate)]
        ch = out
    convs.append((ch, 1, v.kernel, v.kernel, rate))
    return convs


def vocoder_params(v: VocoderSpec) -> int:
    """Weights of the codec decoder: codebook projections plus every conv (weights and biases)."""
    quant = v.codebooks * (v.codebook_size * v.codebook_dim + v.codebook_dim * v.latent_dim + v.latent_dim)
    return quant + sum(i * o * k + o for i, o, k, _, _ in vocoder_layers(v))


def vocode_work(model: ModelSpec, batch: int, audio_seconds: float) -> Work:
    """Codec tokens to waveform for `batch` clips of `audio_seconds` each (DAC decoder)."""
    v = model.vocoder
    if v is None:
        raise CatalogError(f"model {model.name!r} has no vocoder, so it cannot run op 'vocode'.\n"
                           "To fix: use a text-to-speech model such as parler-tts-mini.")
    eb = DTYPE_BYTES[model.dtype]
    secs = batch * audio_seconds
    flops = 0.0
    act = 0.0
    for i, o, _, taps, rate in vocoder_layers(v):
        flops += 2 * i * o * taps * rate * secs
        act += (i + 2 * o) * rate * secs * eb                          # read input, write output, activation pass
    frames = v.sample_rate / math.prod(v.upsample_rates) * secs
    flops += 2 * v.codebooks * v.codebook_dim * v.latent_dim * frames
    n_convs = len(vocoder_layers(v))
    return Work(flops=flops, bytes=vocoder_params(v) * eb + act, kernels=2 * n_convs + 2,
                weight_bytes=vocoder_params(v) * eb, act_bytes=2 * v.decoder_dim * v.sample_rate / 8 * audio_seconds
                * batch * eb, dtype=model.dtype)


def ann_work(op: OpSpec, batch: int, elem_bytes: int) -> Work:
    """Top-k search for `batch` queries over `n` vectors of size `dim`: brute force or IVF."""
    if op.n is None or op.dim is None:
        raise CatalogError("op 'ann_search' needs `n` (vectors in the index) and `dim` (vector size).\n"
                           'To fix: add e.g. "n": 1000000, "dim": 384.')
    n, d = op.n, op.dim
    if op.index == "flat":
        scanned, kernels = float(n), 3
    else:
        nlist = op.nlist or max(1, int(4 * math.sqrt(n)))
        scanned, kernels = nlist + n * min(op.nprobe, nlist) / nlist * min(batch, nlist / min(op.nprobe, nlist)), 6
    return Work(flops=2 * scanned * d * batch + scanned * batch, bytes=scanned * d * elem_bytes + batch * d * elem_bytes,
                kernels=kernels, weight_bytes=n * d * elem_bytes, act_bytes=batch * scanned * 4,
                dtype="fp16" if elem_bytes == 2 else "fp32")


def op_work(op: OpSpec, model: ModelSpec | None, batch: int, elem_bytes: int = 2) -> Work:
    """Dispatch on op kind. Host ops (tokenize, detokenize, py_call) are costed in costmodel."""
    if op.op in MODEL_OPS and model is None:
        raise CatalogError(f"op {op.op!r} needs a `model`.\nTo fix: add e.g. \"model\": \"llama-3.1-8b\".")
    if op.op == "prefill":
        assert model is not None
        return prefill_work(model, batch, op.tokens or 1, op.cross_tokens, op.cached_tokens)
    if op.op == "decode":
        assert model is not None
        return decode_work(model, batch, op.ctx or 0, op.cross_tokens)
    if op.op == "encode":
        assert model is not None
        return encode_work(model, batch, op.tokens)
    if op.op == "vocode":
        assert model is not None
        return vocode_work(model, batch, op.audio_seconds or 1.0)
    if op.op == "ann_search":
        return ann_work(op, batch, elem_bytes)
    raise ValueError(f"op {op.op!r} is a host op; cost it with plait.planner.costmodel.estimate")
