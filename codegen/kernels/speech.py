"""Speech kernels at the catalog's shapes, with seeded random weights (no checkpoint loader yet; every output
says `random_weights`): a whisper-style encoder over log-mel frames, and a decoder for the two speech
decoders the LLM engine does not run, whisper's (cross-attends to the encoder) and parler-tts's (MusicGen-
style: several audio codebooks per step). Prefill and decode run in separate pools; the same seed gives both
the same weights, and the decode pool receives the prefill's state (its KV cache) as a tensor dict.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from plait.codegen.kernels.audio import speech_input
from plait.codegen.program import Step
from plait.planner.catalog import ModelSpec, StackSpec, load_catalog

WHISPER_PROMPT = (50258, 50259, 50359, 50363)   # <|startoftranscript|><|en|><|transcribe|><|notimestamps|>
WHISPER_EOT = 50257


def sinusoids(length: int, dim: int) -> torch.Tensor:
    """[length, dim] sinusoidal positions (whisper's encoder; decoders with no learned positions)."""
    inc = math.log(10000) / (dim // 2 - 1)
    t = torch.arange(length)[:, None] * torch.exp(-inc * torch.arange(dim // 2))[None]
    return torch.cat([torch.sin(t), torch.cos(t)], dim=1)


def random_init(module: nn.Module, seed: int) -> nn.Module:
    """Seeded uniform weights of std 0.02, zero biases, unit norms: built on the meta device first, so a large
    model is not initialized twice (uniform_ draws 1.6x faster than normal_ on a CPU; the spread is the same)."""
    gen = torch.Generator().manual_seed(seed)
    module.to_empty(device="cpu")
    for name, p in module.named_parameters():
        with torch.no_grad():
            if "norm" in name:
                p.fill_(1.0 if name.endswith("weight") else 0.0)
            elif name.endswith("bias"):
                p.zero_()
            else:
                p.uniform_(-0.02 * math.sqrt(3), 0.02 * math.sqrt(3), generator=gen)
    return module


class Attention(nn.Module):
    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))

    def split(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        return x.view(b, t, self.heads, d // self.heads).transpose(1, 2)

    def forward(self, x: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = False) -> torch.Tensor:
        out = F.scaled_dot_product_attention(self.split(self.q(x)), k, v, is_causal=causal)
        return self.o(out.transpose(1, 2).flatten(2))


class Layer(nn.Module):
    """A pre-norm transformer layer: self-attention, optional cross-attention, a GELU MLP."""

    def __init__(self, s: StackSpec, cross: bool) -> None:
        super().__init__()
        self.self_norm, self.attn = nn.LayerNorm(s.d_model), Attention(s.d_model, s.heads)
        self.cross_norm = nn.LayerNorm(s.d_model) if cross else None
        self.cross = Attention(s.d_model, s.heads) if cross else None
        self.mlp_norm, self.up, self.down = nn.LayerNorm(s.d_model), nn.Linear(s.d_model, s.ffn), nn.Linear(s.ffn, s.d_model)

    def forward(self, x: torch.Tensor, cache: dict[str, torch.Tensor] | None, ctx: torch.Tensor | None,
                causal: bool) -> torch.Tensor:
        h = self.self_norm(x)
        k, v = self.attn.split(self.attn.k(h)), self.attn.split(self.attn.v(h))
        if cache is not None:   # decoders: append this step's keys and values to the layer's KV cache
            if "k" in cache:
                k, v = torch.cat([cache["k"], k], 2), torch.cat([cache["v"], v], 2)
            cache["k"], cache["v"] = k, v
        x = x + self.attn(h, k, v, causal=causal and x.shape[1] > 1)
        if self.cross is not None and self.cross_norm is not None and ctx is not None:
            if cache is not None and "ck" in cache:
                ck, cv = cache["ck"], cache["cv"]
            else:   # the encoder output's keys and values, computed once per request
                ck, cv = self.cross.split(self.cross.k(ctx)), self.cross.split(self.cross.v(ctx))
                if cache is not None:
                    cache["ck"], cache["cv"] = ck, cv
            x = x + self.cross(self.cross_norm(x), ck, cv)
        return x + self.down(F.gelu(self.up(self.mlp_norm(x))))


class WhisperEncoderNet(nn.Module):
    def __init__(self, s: StackSpec) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(s.audio_mels, s.d_model, 3, padding=1)
        self.conv2 = nn.Conv1d(s.d_model, s.d_model, 3, stride=2, padding=1)
        self.layers = nn.ModuleList(Layer(s, cross=False) for _ in range(s.layers))
        self.final_norm = nn.LayerNorm(s.d_model)
        self.positions = s.positions

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = F.gelu(self.conv2(F.gelu(self.conv1(mel[None])))).transpose(1, 2)
        x = x[:, : self.positions]   # whisper reads at most 30 s (1500 frames after the stride-2 conv)
        x = x + sinusoids(x.shape[1], x.shape[2]).to(x.dtype)
        for layer in self.layers:
            x = layer(x, None, None, causal=False)
        return self.final_norm(x)[0]


class SpeechEncoder:
    """op.encode of a speech model: audio (WAV path or bytes, 16 kHz samples, or log-mel frames) ->
    {"hidden": [frames, d_model], "random_weights": True}."""

    def __init__(self, model: str, seed: int = 0) -> None:
        self.spec: ModelSpec = load_catalog().model(model)
        assert self.spec.encoder is not None and self.spec.encoder.audio_mels, f"{model} has no speech encoder"
        self.seed = seed
        self.net: nn.Module | None = None

    @classmethod
    def from_step(cls, step: Step, context: Any) -> SpeechEncoder:
        return cls(step.model or "", context.seed)

    def load(self) -> None:
        assert self.spec.encoder is not None
        with torch.device("meta"):
            net = WhisperEncoderNet(self.spec.encoder)
        self.net = random_init(net, self.seed).eval()

    @torch.inference_mode()
    def __call__(self, audio: Any) -> dict[str, Any]:
        if self.net is None:
            self.load()
        assert self.net is not None and self.spec.encoder is not None
        mel = speech_input(audio, self.spec.encoder.audio_mels)
        return {"hidden": self.net(mel), "random_weights": True}


class DecoderNet(nn.Module):
    """Token (or summed codebook) embeddings, positions, cross-attending layers, one head per codebook."""

    def __init__(self, s: StackSpec, prompt_vocab: int) -> None:
        super().__init__()
        self.embed = nn.ModuleList(nn.Embedding(s.vocab, s.d_model) for _ in range(s.codebooks))
        self.prompt = nn.Embedding(prompt_vocab, s.d_model) if prompt_vocab else None
        self.pos = nn.Embedding(s.positions, s.d_model) if s.positions else None
        self.layers = nn.ModuleList(Layer(s, s.cross_attention) for _ in range(s.layers))
        self.final_norm = nn.LayerNorm(s.d_model)
        self.heads = nn.ModuleList(nn.Linear(s.d_model, s.vocab, bias=False) for _ in range(s.codebooks))
        self.d = s.d_model

    def embed_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """[t, codebooks] ids -> [1, t, d]: the sum of each codebook's embedding (MusicGen)."""
        return sum(e(codes[:, i]) for i, e in enumerate(self.embed))[None]  # type: ignore[return-value]

    def step(self, x: torch.Tensor, start: int, caches: list[dict[str, torch.Tensor]],
             ctx: torch.Tensor | None) -> torch.Tensor:
        pos = torch.arange(start, start + x.shape[1])
        x = x + (self.pos(pos)[None] if self.pos is not None else sinusoids(start + x.shape[1], self.d)[start:][None])
        for layer, cache in zip(self.layers, caches, strict=True):
            x = layer(x, cache, ctx, causal=True)
        h = self.final_norm(x[:, -1])
        return torch.stack([head(h)[0] for head in self.heads])   # [codebooks, vocab]


@dataclass
class SpeechState:
    """A request's decoder state after prefill: per-layer KV caches (self and cross), the position, and the
    logits of the next step. This is the !agent.kv value that moves from the prefill pool to the decode pool."""

    caches: list[dict[str, torch.Tensor]]
    position: int
    logits: torch.Tensor
    random_weights: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    def pack(self) -> torch.Tensor:
        """One flat float32 tensor (a Gloo transfer moves one tensor): [position, cross length], the logits, then
        each layer's k, v (and ck, cv). The receiver rebuilds the shapes from the model's spec (`unpack`)."""
        cross = self.caches[0]["ck"].shape[2] if "ck" in self.caches[0] else 0
        parts = [torch.tensor([float(self.position), float(cross)]), self.logits.float().flatten()]
        for cache in self.caches:
            parts += [cache[k].float().flatten() for k in ("k", "v", "ck", "cv") if k in cache]
        return torch.cat(parts)


class SpeechDecoder:
    """op.prefill / op.decode of whisper's decoder or parler-tts's multi-codebook decoder (greedy)."""

    def __init__(self, model: str, op: str = "op.decode", seed: int = 0, max_tokens: int | None = None) -> None:
        self.spec: ModelSpec = load_catalog().model(model)
        assert self.spec.decoder is not None, f"{model} has no decoder"
        self.op, self.seed, self.max_tokens = op, seed, max_tokens
        self.net: DecoderNet | None = None
        self.whisper = self.spec.decoder.cross_attention and self.spec.encoder is not None and \
            bool(self.spec.encoder.audio_mels)

    @classmethod
    def from_step(cls, step: Step, context: Any) -> SpeechDecoder:
        cap = step.attrs.get("max_tokens")
        return cls(step.model or "", step.op, context.seed, int(cap) if isinstance(cap, int) else None)

    def load(self) -> None:
        d, enc = self.spec.decoder, self.spec.encoder
        assert d is not None
        # parler-tts: the prompt text is embedded by its own table (the T5 vocabulary) and prepended
        prompt_vocab = 0 if self.whisper or enc is None else enc.vocab
        with torch.device("meta"):
            net = DecoderNet(d, prompt_vocab)
        self.net = random_init(net, self.seed + 1).eval()  # type: ignore[assignment]

    @torch.inference_mode()
    def prefill(self, prompt: torch.Tensor | None = None, context: Any = None) -> SpeechState:
        """Run the prompt (whisper: its task tokens by default; parler: the text's tokens) and, for a cross-
        attending decoder, the encoder's output (`context`: [frames, d] or the speech encoder's dict)."""
        if self.net is None:
            self.load()
        net = self.net
        assert net is not None and self.spec.decoder is not None
        ctx = context["hidden"] if isinstance(context, dict) else context
        caches: list[dict[str, torch.Tensor]] = [{} for _ in net.layers]
        if self.whisper:
            ids = torch.tensor(WHISPER_PROMPT) if prompt is None else prompt
            x = net.embed_codes(ids.reshape(-1, 1))
        else:
            assert net.prompt is not None and prompt is not None, "parler-tts's prefill needs the prompt's tokens"
            x = net.prompt(prompt.clamp(max=net.prompt.num_embeddings - 1))[None]
            ctx = x[0] if ctx is None else ctx   # no description encoder in the graph: attend to the prompt
        logits = net.step(x, 0, caches, None if ctx is None else ctx[None])
        return SpeechState(caches, x.shape[1], logits)

    @torch.inference_mode()
    def decode(self, state: SpeechState, max_tokens: int | None = None, ignore_eos: bool = False) -> torch.Tensor:
        """Greedy tokens: [n] for whisper (stops at end of text), [n, codebooks] for parler-tts (stops at the
        codec's end token, id codebook_size, in the first codebook)."""
        if self.net is None:
            self.load()
        net, d = self.net, self.spec.decoder
        assert net is not None and d is not None
        cap = max_tokens or self.max_tokens or 32
        eos = WHISPER_EOT if self.whisper else (self.spec.vocoder.codebook_size if self.spec.vocoder else -1)
        out, logits, pos = [], state.logits, state.position
        for _ in range(cap):
            codes = logits.argmax(-1)                                  # [codebooks]
            if int(codes[0]) == eos and not ignore_eos:   # --follow-figures: the drawn length, as ignore-EOS
                break
            out.append(codes)
            logits = net.step(net.embed_codes(codes[None]), pos, state.caches, None)
            pos += 1
        tokens = torch.stack(out) if out else torch.zeros(0, d.codebooks, dtype=torch.int64)
        return tokens[:, 0] if d.codebooks == 1 else tokens

    def unpack(self, flat: torch.Tensor) -> SpeechState:
        """The SpeechState that `SpeechState.pack` flattened (on the prefill pool, same model and spec)."""
        d = self.spec.decoder
        assert d is not None
        position, cross = int(flat[0]), int(flat[1])
        hd, at = d.d_model // d.heads, 2
        logits = flat[at: at + d.codebooks * d.vocab].view(d.codebooks, d.vocab)
        at += logits.numel()
        caches: list[dict[str, torch.Tensor]] = []
        for _ in range(d.layers):
            cache = {}
            for key, length in (("k", position), ("v", position), ("ck", cross), ("cv", cross)):
                if length:
                    n = d.heads * length * hd
                    cache[key] = flat[at: at + n].view(1, d.heads, length, hd)
                    at += n
            caches.append(cache)
        if at != flat.numel():
            raise ValueError(f"a {flat.numel()}-value decoder state does not fit {self.spec.name}'s shapes ({at})")
        return SpeechState(caches, position, logits)

    def __call__(self, *inputs: Any, **kwargs: Any) -> Any:
        if self.op == "op.prefill":
            return self.prefill(*inputs, **kwargs)
        return self.decode(*inputs, **kwargs)
