"""The kernel registry: which kernel runs each op of a device program, and which models it serves.

One row per kernel, declarative: the ops it runs and a check that names what is missing when it cannot run
an op's model. An op no row claims, or one whose check fails, has no kernel yet: codegen refuses the plan
and names the op, its model and what is missing, rather than emit a program a worker cannot run.
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


def _vocoder_missing(op: Operation, catalog: Catalog) -> str | None:
    m = _model(op, catalog)
    return f"no vocoder kernel for {m.name if m else 'this model'!r} (a DAC-style codec decoder)"


def _always(op: Operation, catalog: Catalog) -> str | None:
    return None


@dataclass(frozen=True)
class Kernel:
    """A kernel device programs bind ops to: its name, the ops it runs, and what it needs of their model."""

    name: str
    ops: tuple[str, ...]
    runs: str                                                          # in words, for docs and errors
    missing: Callable[[Operation, Catalog], str | None] = _always     # None: it runs the op


KERNELS: tuple[Kernel, ...] = (
    Kernel("tokenizer", ("op.tokenize", "op.detokenize"), "the model's tokenizer (tokenizer.json, else byte-level)"),
    Kernel("llm-engine", ("op.prefill", "op.decode"), "the LLM engine of the pool's model in the pool's role",
           _llm_missing),
    Kernel("encoder", ("op.encode",), "a text encoder forward (token ids to one embedding)", _encoder_missing),
    Kernel("vocoder", ("op.vocode",), "a codec decoder (audio codes to a waveform)", _vocoder_missing),
    Kernel("vector-search", ("op.ann_search",), "nearest-neighbour search over the pool's index"),
    Kernel("python", ("op.py_call",), "the user's Python tool in a worker process"),
    Kernel("format", ("op.format",), "str.format of a prompt template (host CPU)"),
    Kernel("glue", ("agent.box", "agent.select_arm", "agent.gather", "agent.count", "agent.item", "agent.empty",
                    "agent.append"), "host-side plumbing: boxing, arm selection, list building"),
    Kernel("transfer", ("xfer.send", "xfer.recv"), "a point-to-point send or receive (NCCL, or Gloo via host memory)"),
)
BY_OP: dict[str, Kernel] = {op: k for k in KERNELS for op in k.ops}


def kernel_for(op: Operation, catalog: Catalog) -> tuple[Kernel | None, str | None]:
    """(the kernel that runs `op`, None) or (None, what is missing) when no kernel runs it yet."""
    kernel = BY_OP.get(op.name)
    if kernel is None:
        return None, f"no kernel runs {op.name}"
    if (missing := kernel.missing(op, catalog)) is not None:
        return None, missing
    return kernel, None
