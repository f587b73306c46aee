"""The kernel registry: which kernel runs each op of a device program, and which models it serves.

One row per kernel, declarative: the ops it runs, a check that names what is missing when it cannot run
an op's model, and `impl`, the callable a worker instantiates for it (`plait.codegen.kernels.runtime`). An
op is bound to the first row that claims it and whose check passes; an op no row runs has no kernel:
codegen refuses the plan and names the op, its model and what is missing, rather than emit a program a
worker cannot run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from xdsl.dialects.builtin import StringAttr
from xdsl.ir import Operation

from plait.planner.catalog import Catalog, ModelSpec

CODEGEN_2 = "yet (codegen 2)"


def _model(op: Operation, catalog: Catalog) -> ModelSpec | None:
    attr = op.attributes.get("model")
    return catalog.model(attr.data) if isinstance(attr, StringAttr) else None


def _llm_missing(op: Operation, catalog: Catalog) -> str | None:
    m = _model(op, catalog)
    return "it names no model" if m is None else llm_engine_missing(m)


def llm_engine_missing(m: ModelSpec) -> str | None:
    """None when the LLM engine runs `m` (a dense decoder-only llama or qwen2 transformer), else what is missing."""
    if m.decoder is None:
        return f"{m.name!r} has no decoder (it is an encoder); the llm-engine runs decoder-only LLMs"
    d = m.decoder
    if d.experts > 1:
        return (f"{m.name!r} is a mixture-of-experts model ({d.experts} experts, {d.experts_per_token} per token); "
                "the llm-engine runs dense models only")
    if d.codebooks > 1:
        return f"{m.name!r} decodes {d.codebooks} audio codebooks per step; the llm-engine decodes one token stream"
    if d.cross_attention:
        return f"{m.name!r} is a speech decoder that cross-attends to an encoder; the llm-engine has no cross-attention"
    if m.arch is None:
        return f"the catalog records no architecture (arch: llama or qwen2) for {m.name!r}"
    return None


def _encoder_missing(op: Operation, catalog: Catalog) -> str | None:
    """The encoder kernel runs BERT-style text encoders (token ids in, one pooled embedding out)."""
    m = _model(op, catalog)
    if m is None or m.encoder is None:
        return "it names no encoder model"
    if m.encoder.audio_mels:
        return f"{m.name!r} is a speech encoder over mel frames; the encoder kernel embeds text"
    if m.encoder.mlp != "gelu" or m.encoder.norm != "layernorm":
        return f"{m.name!r} is not a BERT-style encoder (gelu MLP, layernorm), the only kind the encoder kernel runs"
    return None


def _speech_encoder_missing(op: Operation, catalog: Catalog) -> str | None:
    """The speech encoder runs whisper-style encoders: a conv front end over log-mel frames, then layers."""
    m = _model(op, catalog)
    if m is None or m.encoder is None or not m.encoder.audio_mels:
        return f"{m.name if m else 'this model'!r} has no speech encoder (no mel front end)"
    return None


def _speech_decoder_missing(op: Operation, catalog: Catalog) -> str | None:
    """The speech decoder runs decoders the LLM engine does not: cross-attending (whisper) or multi-codebook
    (parler-tts, MusicGen-style) stacks with learned or sinusoidal positions."""
    m = _model(op, catalog)
    if m is None or m.decoder is None:
        return "it names no decoder model"
    d = m.decoder
    if not (d.cross_attention or d.codebooks > 1):
        return f"{m.name!r} is a text LLM (no cross-attention, one codebook): the llm-engine runs it"
    if d.experts > 1 or d.rotary:
        return f"{m.name!r} is a speech decoder with rotary positions or experts, which the speech decoder lacks"
    return None


def _vocoder_missing(op: Operation, catalog: Catalog) -> str | None:
    m = _model(op, catalog)
    if m is None or m.vocoder is None:
        return f"{m.name if m else 'this model'!r} has no vocoder in the catalog (a DAC-style codec decoder)"
    return None


def _always(op: Operation, catalog: Catalog) -> str | None:
    return None


@dataclass(frozen=True)
class Kernel:
    """A kernel device programs bind ops to: its name, the ops it runs, what it needs of their model, and
    `impl`, the `module:Class` a worker instantiates (None: the scheduler itself runs the op)."""

    name: str
    ops: tuple[str, ...]
    runs: str                                                          # in words, for docs and errors
    missing: Callable[[Operation, Catalog], str | None] = _always     # None: it runs the op
    impl: str | None = None


_K = "plait.codegen.kernels."
KERNELS: tuple[Kernel, ...] = (
    Kernel("tokenizer", ("op.tokenize", "op.detokenize"), "the model's tokenizer (tokenizer.json, else byte-level)",
           impl=_K + "text:Tokenizer"),
    Kernel("llm-engine", ("op.prefill", "op.decode"), "the LLM engine of the pool's model in the pool's role",
           _llm_missing, impl="plait.codegen.engine.engine:LLMEngine"),
    Kernel("speech-decoder", ("op.prefill", "op.decode"), "a speech decoder: cross-attention to an encoder "
           "(whisper) or several audio codebooks per step (parler-tts); random weights", _speech_decoder_missing,
           impl=_K + "speech:SpeechDecoder"),
    Kernel("encoder", ("op.encode",), "a text encoder forward (token ids to one embedding)", _encoder_missing,
           impl=_K + "encoder:TextEncoder"),
    Kernel("speech-encoder", ("op.encode",), "a whisper-style speech encoder (log-mel frames to hidden states); "
           "random weights", _speech_encoder_missing, impl=_K + "speech:SpeechEncoder"),
    Kernel("vocoder", ("op.vocode",), "a DAC-style codec decoder (audio codes to a waveform); random weights",
           _vocoder_missing, impl=_K + "vocoder:Vocoder"),
    Kernel("vector-search", ("op.ann_search",), "exact top-k search over the pool's index (torch, cupy or faiss)",
           impl=_K + "search:VectorSearch"),
    Kernel("python", ("op.py_call",), "the user's Python tool in a worker process, under its timeout",
           impl=_K + "tools:PythonTool"),
    Kernel("format", ("op.format",), "str.format of a prompt template (host CPU)", impl=_K + "host:Format"),
    Kernel("glue", ("agent.box", "agent.select_arm", "agent.gather", "agent.count", "agent.item", "agent.empty",
                    "agent.append"), "host-side plumbing: boxing, arm selection, list building", impl=_K + "host:Glue"),
    Kernel("transfer", ("xfer.send", "xfer.recv"), "a point-to-point send or receive (NCCL, or Gloo via host "
           "memory), run by the scheduler's transfer layer"),
)
BY_OP: dict[str, tuple[Kernel, ...]] = {op: tuple(k for k in KERNELS if op in k.ops) for k in KERNELS for op in k.ops}
BY_NAME: dict[str, Kernel] = {k.name: k for k in KERNELS}


def kernel_for(op: Operation, catalog: Catalog) -> tuple[Kernel | None, str | None]:
    """(the kernel that runs `op`, None) or (None, what is missing) when no kernel runs it.

    The first row claiming the op whose check passes binds it; when none does, the first row's reason is
    given (it is the kernel the op would most often run on).
    """
    rows = BY_OP.get(op.name, ())
    if not rows:
        return None, f"no kernel runs {op.name}"
    reasons = []
    for kernel in rows:
        if (missing := kernel.missing(op, catalog)) is None:
            return kernel, None
        reasons.append(missing)
    return None, "; ".join(reasons)
