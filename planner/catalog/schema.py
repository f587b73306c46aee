"""Pydantic row models of the device and model catalogs: one small model per row kind, units in descriptions."""

from __future__ import annotations

from functools import cached_property
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Tag = Literal["sourced", "secondary", "computed", "paper", "measured", "assumption"]
Dtype = Literal["fp32", "tf32", "bf16", "fp16", "fp8", "int8"]
FactorName = Literal["compute_eff", "bw_eff", "attn_eff", "act_bw_eff", "launch_eager_s", "launch_graph_s", "fixed_s", "link_eff",
                     "link_latency_s"]
DTYPE_BYTES: dict[str, int] = {"fp32": 4, "tf32": 4, "bf16": 2, "fp16": 2, "fp8": 1, "int8": 1}


class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Figure(_Row):
    """One number with where it came from. `tag: assumption` means nobody could source it."""

    value: float = Field(description="the figure, in `unit`")
    unit: str = Field(default="", description="unit of `value` (TFLOP/s, GB, GB/s, W, USD, USD/hour, ...)")
    tag: Tag = Field(description="sourced | secondary | computed | paper (hardware.md's tags) | measured (on this machine, by `plait calibrate`) | assumption")
    source: str | None = Field(default=None, description="title of the source document")
    url: str | None = Field(default=None, description="address of the source document")
    note: str = Field(default="", description="how the value was read or derived")

    @model_validator(mode="after")
    def _sourced_unless_assumed(self) -> Figure:
        if self.tag != "assumption" and not self.source:
            raise ValueError(f"a figure tagged {self.tag!r} needs a `source`; tag it `assumption` if it has none")
        return self

    @property
    def is_assumption(self) -> bool:
        return self.tag == "assumption"


class DeviceSpec(_Row):
    """A device a stage can run on: one accelerator (kind gpu) or one CPU socket/server (kind cpu)."""

    name: str = Field(default="", description="catalog key, e.g. h200 (filled in from the YAML key)")
    label: str = Field(description="the vendor's product name")
    kind: Literal["gpu", "cpu"] = Field(description="gpu: any accelerator with its own memory; cpu: a CPU server")
    vendor: str = Field(default="unknown", description="nvidia, amd, intel, aws, ...")
    flops: dict[Dtype, Figure] = Field(description="dense peak TFLOP/s per dtype (never the 2:4 sparsity figure)")
    mem_gb: Figure = Field(description="device memory capacity, GB (1e9 bytes)")
    mem_bw_gbps: Figure = Field(description="peak memory bandwidth, GB/s")
    host_link_gbps: Figure | None = Field(default=None, description="host link (PCIe) bandwidth per direction, GB/s; cpu: none")
    scaleup_gbps: Figure | None = Field(default=None, description="scale-up link (NVLink-class) per direction, GB/s; 0: none")
    tdp_w: Figure = Field(description="thermal design power, W (TCO charges power at TDP)")
    capex_usd: Figure = Field(description="purchase price of one device, USD")
    cloud_usd_per_hour: Figure = Field(description="on-demand cloud price of one device, USD/hour")
    cloud_quotes: dict[str, float] = Field(default_factory=dict, description=(
        "provider -> on-demand USD/device-hour quotes (hardware.md section 3) that cloud_usd_per_hour is taken "
        "from; the basis is planner/catalog/prices.py"))
    factors: dict[FactorName, Figure] = Field(default_factory=dict, description=(
        "efficiency factors measured on this device type (a public measurement, cited); every other factor is "
        "carried from the class fit (planner/catalog/factors.yaml)"))
    cores: Figure | None = Field(default=None, description="cpu: physical cores")
    clock_ghz: Figure | None = Field(default=None, description="cpu: base clock, GHz")
    inventory_only: bool = Field(default=False, description=(
        "plan onto this device only when an inventory names it: a machine one has (plait calibrate --cpu's "
        "`local`), not a type one rents without limit"))

    @cached_property   # the spec is frozen, and the cost model asks for this on every estimate
    def _figures(self) -> dict[str, Figure]:
        out = {f"flops.{k}": v for k, v in self.flops.items()}
        for key in ("mem_gb", "mem_bw_gbps", "host_link_gbps", "scaleup_gbps", "tdp_w", "capex_usd",
                    "cloud_usd_per_hour", "cores", "clock_ghz"):
            fig = getattr(self, key)
            if fig is not None:
                out[key] = fig
        return out

    def figures(self) -> dict[str, Figure]:
        """Every figure of this device by dotted name (flops.bf16, mem_gb, ...)."""
        return dict(self._figures)


class Source(_Row):
    title: str = Field(description="what the figures were read from")
    url: str = Field(description="where")


class StackSpec(_Row):
    """A transformer stack (decoder or encoder). Per-layer shapes; everything else is computed."""

    layers: int = Field(gt=0, description="transformer layers")
    d_model: int = Field(gt=0, description="hidden size")
    heads: int = Field(gt=0, description="attention (query) heads")
    kv_heads: int | None = Field(default=None, description="key/value heads (GQA); default: heads")
    head_dim: int | None = Field(default=None, description="per-head size; default: d_model // heads")
    ffn: int = Field(gt=0, description="MLP inner size (per expert)")
    vocab: int = Field(ge=0, description="token vocabulary (per codebook); 0: no token embedding (audio input)")
    mlp: Literal["swiglu", "gated-gelu", "gelu"] = Field(default="swiglu", description="gated MLPs have 3 matrices, gelu 2")
    norm: Literal["rmsnorm", "layernorm"] = Field(default="rmsnorm", description="normalisation (layernorm has a bias)")
    bias: Literal["none", "qkv", "all"] = Field(default="none", description="which linear layers have biases")
    experts: int = Field(default=1, ge=1, description="MoE experts per layer (1: dense)")
    experts_per_token: int = Field(default=1, ge=1, description="MoE experts each token is routed to")
    codebooks: int = Field(default=1, ge=1, description="parallel token streams (audio codebooks): embeddings and heads each")
    tied_embeddings: bool = Field(default=False, description="LM head shares the embedding matrix")
    rotary: bool = Field(default=True, description="rotary position embedding (one extra kernel per layer)")
    positions: int = Field(default=0, ge=0, description="learned position-embedding rows (0: none)")
    cross_attention: bool = Field(default=False, description="decoder layers also attend to an encoder's output")
    cross_tokens: int = Field(default=0, ge=0, description="default encoder-output length a cross-attending decoder reads")
    audio_mels: int = Field(default=0, ge=0, description="whisper-style conv front end over this many mel bins (0: none)")
    default_tokens: int = Field(default=128, gt=0, description="default sequence length for `encode`")

    @model_validator(mode="after")
    def _shapes_agree(self) -> StackSpec:
        kv = self.kv_heads or self.heads
        if self.heads % kv:
            raise ValueError(f"heads ({self.heads}) must be a multiple of kv_heads ({kv})")
        if self.experts_per_token > self.experts:
            raise ValueError(f"experts_per_token ({self.experts_per_token}) exceeds experts ({self.experts})")
        if self.head_dim is None and self.d_model % self.heads:
            raise ValueError(f"d_model ({self.d_model}) is not a multiple of heads ({self.heads}); give head_dim")
        return self

    @property
    def n_kv(self) -> int:
        return self.kv_heads or self.heads

    @property
    def hd(self) -> int:
        return self.head_dim or self.d_model // self.heads


class VocoderSpec(_Row):
    """A DAC-style convolutional decoder from codebook tokens to audio samples."""

    source: Source | None = None
    sample_rate: int = Field(gt=0, description="output samples per second")
    latent_dim: int = Field(gt=0, description="channels of the quantized latent")
    decoder_dim: int = Field(gt=0, description="channels after the input conv; halves at every upsampling block")
    upsample_rates: list[int] = Field(description="stride of each transposed-conv block; product = hop length")
    codebooks: int = Field(gt=0, description="residual codebooks per frame")
    codebook_size: int = Field(gt=0, description="entries per codebook")
    codebook_dim: int = Field(gt=0, description="codebook vector size before projection to latent_dim")
    kernel: int = Field(default=7, gt=0, description="kernel size of the non-upsampling convolutions")
    residual_units: int = Field(default=3, ge=0, description="residual units (k-conv + 1x1 conv) per block")


class ArchSpec(_Row):
    """What a dense decoder-only LLM's checkpoint must agree with besides its dimensions (its config.json).

    Tied embeddings and the qkv bias are the decoder stack's `tied_embeddings` and `bias`; these are the rest
    of what an engine needs to run the model and to refuse a checkpoint of another architecture.
    """

    arch: Literal["llama", "qwen2"] = Field(description="the engine's model code: llama (Llama 3.x, Mistral without "
                                                        "sliding window) or qwen2 (Qwen 2.5)")
    model_types: list[str] = Field(description="config.json `model_type` values a checkpoint of this model may carry")
    rope_theta: float = Field(gt=0, description="config.json rope_theta (rotary base)")
    rope_scaling: dict[str, float | int | str] | None = Field(
        default=None, description="config.json rope_scaling as written (llama3: factor, low/high_freq_factor, "
                                  "original_max_position_embeddings); None: plain rotary")
    rms_norm_eps: float = Field(gt=0, description="config.json rms_norm_eps")
    max_position_embeddings: int = Field(gt=0, description="config.json max_position_embeddings, tokens")
    eos_token_ids: list[int] = Field(min_length=1, description="config.json eos_token_id (as a list)")


class ScaleSpec(_Row):
    """A scaled-down size of a dense LLM: random weights that keep the architecture's shape (family, GQA ratio,
    rope, tied embeddings, qkv bias), small enough to run on a CPU. Named `model@scale` (llama-3.1-8b@tiny)."""

    layers: int = Field(gt=0, description="transformer layers")
    d_model: int = Field(gt=0, description="hidden size")
    heads: int = Field(gt=0, description="attention (query) heads")
    kv_heads: int = Field(gt=0, description="key/value heads; heads / kv_heads is the full model's GQA ratio")
    head_dim: int = Field(gt=0, description="per-head size")
    ffn: int = Field(gt=0, description="MLP inner size")
    vocab: int = Field(gt=256, description="token vocabulary (a byte-level tokenizer needs 256 ids plus specials)")
    eos_token_ids: list[int] = Field(min_length=1, description="end-of-text ids within `vocab`")


SCALE_SEP = "@"
"""Separates a model from its scale in a model name: llama-3.1-8b@tiny."""


class ModelSpec(_Row):
    """A model of the catalog: its stacks, weight dtype and where the figures came from."""

    name: str = Field(default="", description="catalog key (filled in from the YAML key)")
    source: Source
    note: str = ""
    aliases: list[str] = Field(default_factory=list, description="other names accepted for this model")
    dtype: Dtype = Field(default="bf16", description="weight and activation dtype")
    decoder: StackSpec | None = None
    encoder: StackSpec | None = None
    vocoder: VocoderSpec | None = None
    arch: ArchSpec | None = Field(default=None, description="dense decoder-only LLMs: the config.json facts an "
                                                           "engine runs and checks checkpoints against")
    scales: dict[str, ScaleSpec] = Field(default_factory=dict, description=(
        "scaled-down sizes (tiny, small) of a dense LLM, each reachable as `model@scale`"))
    scale: str | None = Field(default=None, description="set on a scaled model (`model@scale`): the scale's name")

    @model_validator(mode="after")
    def _has_a_stack(self) -> ModelSpec:
        if self.decoder is None and self.encoder is None and self.vocoder is None:
            raise ValueError("a model needs at least one of decoder, encoder, vocoder")
        if (self.arch is not None or self.scales) and (self.decoder is None or self.decoder.experts > 1):
            raise ValueError("arch and scales describe dense decoder-only LLMs; this model has no dense decoder")
        for name, sc in self.scales.items():
            d = self.decoder
            assert d is not None
            if sc.heads * d.n_kv != d.heads * sc.kv_heads:
                raise ValueError(f"scale {name!r} has {sc.heads} heads over {sc.kv_heads} kv_heads, but the model's "
                                 f"GQA ratio is {d.heads} over {d.n_kv}; keep the ratio")
            if any(e >= sc.vocab for e in sc.eos_token_ids):
                raise ValueError(f"scale {name!r}: eos_token_ids {sc.eos_token_ids} must be below vocab {sc.vocab}")
        return self

    @property
    def base_name(self) -> str:
        """The full-size model's catalog name (`llama-3.1-8b` for `llama-3.1-8b@tiny`)."""
        return self.name.split(SCALE_SEP, 1)[0]

    def scaled(self, scale: str) -> ModelSpec:
        """This model at `scale` (a key of `scales`): the decoder's dimensions replaced by the scale's."""
        sc = self.scales[scale]
        assert self.decoder is not None
        decoder = self.decoder.model_copy(update={
            "layers": sc.layers, "d_model": sc.d_model, "heads": sc.heads, "kv_heads": sc.kv_heads,
            "head_dim": sc.head_dim, "ffn": sc.ffn, "vocab": sc.vocab})
        arch = self.arch.model_copy(update={"eos_token_ids": list(sc.eos_token_ids)}) if self.arch else None
        return self.model_copy(update={"name": f"{self.name}{SCALE_SEP}{scale}", "decoder": decoder, "scales": {},
                                       "scale": scale, "aliases": [], "arch": arch,
                                       "note": f"{self.name} scaled down to {scale!r}: random weights, same architecture"})
