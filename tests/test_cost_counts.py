"""FLOP, byte and parameter counts against hand arithmetic (the arithmetic is in the comments)."""

from __future__ import annotations

from plait.planner.catalog import load_catalog
from plait.planner.workload import (
    decode_work,
    encode_work,
    kv_bytes_per_token,
    kv_cache_bytes,
    prefill_work,
    stack_params,
)

CAT = load_catalog()


def test_llama_8b_parameters_match_the_published_count() -> None:
    s = CAT.model("llama-3.1-8b").decoder
    assert s is not None
    # per layer: q 4096*4096 + k,v 2*4096*(8*128) + o 4096*4096 = 41,943,040; MLP 3*4096*14336 = 176,160,768;
    # RMSNorm weights 2*4096 = 8,192 -> 218,112,000; x 32 layers = 6,979,584,000.
    # embeddings 128256*4096 = 525,336,576, untied head the same, final norm 4096.
    assert stack_params(s, "decoder")["total"] == 6_979_584_000 + 2 * 525_336_576 + 4096 == 8_030_261_248


def test_llama_1b_untied_matches_the_calibration_file() -> None:
    s = CAT.model("llama-3.2-1b").decoder
    assert s is not None
    # ../shared/calibration timed an untied llama-3.2-1b with 1,498,482,688 parameters:
    # layer 2048*3072 + 2048*2048 + 3*2048*8192 + 2*2048 = 60,821,504; x16 = 973,144,064;
    # + 2 * 128256*2048 (embeddings, head) = 525,336,576; + 2048 (final norm).
    untied = s.model_copy(update={"tied_embeddings": False})
    assert stack_params(untied, "decoder")["total"] == 973_144_064 + 525_336_576 + 2048 == 1_498_482_688


def test_llama_8b_decode_flops_and_bytes() -> None:
    w = decode_work(CAT.model("llama-3.1-8b"), batch=1, ctx=1024)
    # matmuls: 2 * (41,943,040 + 176,160,768) * 32 layers = 13,958,643,712
    # attention: 4 * 32 heads * 128 * (1024 + 1) keys * 32 layers = 537,395,200
    # LM head on one position: 2 * 128256 * 4096 = 1,050,673,152
    assert w.flops == 13_958_643_712 + 537_395_200 + 1_050_673_152 == 15_546_712_064
    # weights read: (218,112,000 * 32 + 525,336,576 head + 4096 norm) * 2 bytes = 15,009,849,344
    # KV read: 2 * 32 * 8 * 128 * 2 B = 131,072 B/token * 1025 = 134,348,800; KV write 131,072
    # activations: 32 * (10 * 4096 + 3 * 14336) * 2 B = 5,373,952
    assert w.bytes == 15_009_849_344 + 134_348_800 + 131_072 + 5_373_952
    assert w.kernels == 32 * 13 + 3


def test_llama_8b_kv_cache_bytes() -> None:
    m = CAT.model("llama-3.1-8b")
    assert m.decoder is not None
    assert kv_bytes_per_token(m.decoder, "bf16") == 2 * 32 * 8 * 128 * 2 == 131_072
    assert kv_cache_bytes(m, tokens=2048, batch=4) == 4 * 2048 * 131_072
    assert prefill_work(m, 4, 2048).kv_out == kv_cache_bytes(m, 2048, 4)


def test_llama_8b_prefill_flops() -> None:
    w = prefill_work(CAT.model("llama-3.1-8b"), batch=1, tokens=2048)
    # matmuls 2 * 218,103,808 * 32 * 2048 = 28,587,302,322,176; causal attention
    # 4 * 32 * 128 * (2048 * 2049 / 2) * 32 = 16,384 * 2,098,176 * 32 = 1,100,048,498,688;
    # head on the last position 1,050,673,152
    assert w.flops == 28_587_302_322_176 + 1_100_048_498_688 + 1_050_673_152


def test_minilm_encode_flops_and_parameters() -> None:
    m = CAT.model("minilm-l6")
    assert m.encoder is not None
    w = encode_work(m, batch=1, tokens=128)
    # per layer: q,k,v,o 4 * 384 * 384 = 589,824; MLP (GELU, 2 matrices) 2 * 384 * 1536 = 1,179,648
    # matmuls 2 * 1,769,472 * 6 layers * 128 tokens = 2,717,908,992
    # attention (bidirectional) 4 * 12 heads * 32 * 128 * 128 * 6 = 150,994,944
    assert w.flops == 2_717_908_992 + 150_994_944
    # parameters: layer 1,769,472 + biases (1152 qkv + 384 o + 1536 + 384 MLP) + 2 LayerNorms 1536 = 1,774,464;
    # x6 = 10,646,784; embeddings 30522*384 + 512 positions*384 = 11,917,056; final norm 768
    assert stack_params(m.encoder, "encoder")["total"] == 10_646_784 + 11_917_056 + 768 == 22_564_608


def test_moe_touches_fewer_experts_at_small_batch() -> None:
    m = CAT.model("mixtral-8x7b")
    small, large = decode_work(m, 1, 1024), decode_work(m, 256, 1024)
    assert m.decoder is not None
    expert = 3 * 4096 * 14336 * 2 * 32     # one expert's bytes across 32 layers
    # batch 1 reads 2 of 8 experts; batch 256 reads (almost) all 8
    assert large.bytes - small.bytes > 5.9 * expert
    assert stack_params(m.decoder, "decoder")["total"] == 46_702_792_704
