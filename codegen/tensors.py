"""The dtype and shape of every value a device program holds, derived from the op types and attributes.

A transfer's receiver allocates before the bytes arrive, so every value that crosses a pool border has a
dtype and a shape here: the planned size at p95 (or the hard cap where the op has one, as op.decode's
max_tokens). Axes listed in `dynamic` are shorter at run time; their actual length travels with the value
in the transfer's control message (DESIGN.md, torch: "the receiver must know shape and dtype first").
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from xdsl.dialects.builtin import IndexType, IntegerType
from xdsl.ir import Attribute, Operation, SSAValue

from plait.ir.dialects import agent as A
from plait.ir.dialects import op as O
from plait.ir.dialects import xfer as X
from plait.ir.dialects._base import num
from plait.planner.catalog import Catalog, ModelSpec
from plait.sdk.estimate import CHARS_PER_TOKEN

Dtype = Literal["int64", "bool", "float32", "bfloat16", "float16", "float8", "int8", "uint8"]
TORCH_DTYPES: dict[str, Dtype] = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32", "tf32": "float32",
                                  "fp8": "float8", "int8": "int8"}
TEXTLIKE = (A.TextType, A.TextsType, A.JsonType, A.DocsType)
"""Values that travel as UTF-8 bytes (text, lists of texts, JSON, retrieved documents)."""


class TensorSpec(BaseModel):
    """dtype and shape of one value: what a receiver allocates before the transfer."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dtype: Dtype = Field(description="torch dtype name; text-like values are UTF-8 bytes (uint8)")
    shape: list[int] = Field(description="planned size per axis (p95, or the op's cap); [] for a scalar")
    dims: list[str] = Field(description="what each axis counts, e.g. [layers, kv, kv_heads, tokens, head_dim]")
    dynamic: list[str] = Field(default_factory=list, description=(
        "axes whose run-time length may be shorter; it travels in the transfer's control message"))

    def text(self) -> str:
        """`bfloat16[layers 32, kv 2, kv_heads 8, tokens 900*, head_dim 128]` (* marks a dynamic axis)."""
        axes = ", ".join(f"{d} {n}{'*' if d in self.dynamic else ''}" for d, n in zip(self.dims, self.shape, strict=True))
        return f"{self.dtype}[{axes}]"


def _p95(op: Operation, name: str) -> int:
    return math.ceil(A.dist(op, name)[1])


def _utf8(nbytes: int) -> TensorSpec:
    return TensorSpec(dtype="uint8", shape=[max(0, int(nbytes))], dims=["bytes"], dynamic=["bytes"])


def kv_tensor(model: ModelSpec, tokens: int) -> TensorSpec:
    """One sequence's KV cache: [layers, 2 (K and V), kv_heads, tokens, head_dim] in the model's dtype."""
    s = model.decoder
    assert s is not None, f"{model.name} has no decoder, so no KV cache"
    return TensorSpec(dtype=TORCH_DTYPES[model.dtype], shape=[s.layers, 2, s.n_kv, tokens, s.hd],
                      dims=["layers", "kv", "kv_heads", "tokens", "head_dim"], dynamic=["tokens"])


def _textlike_bytes(op: Operation) -> int | None:
    """Planned UTF-8 size of a text-like value `op` makes, where its attributes say (else None)."""
    if isinstance(op, O.DetokenizeOp):
        return _p95(op, "tokens") * CHARS_PER_TOKEN
    if isinstance(op, O.AnnSearchOp):
        return int(num(op.k) * num(op.doc_tokens)) * CHARS_PER_TOKEN
    if isinstance(op, X.RecvOp):
        return int(num(op.bytes))
    return None


def transfer_tensor(send: X.SendOp, catalog: Catalog) -> TensorSpec:
    """What one transfer moves: the sent value's tensor; text-like values as UTF-8 bytes, at least as many as the
    planner costed for the edge (the receiver's buffer must hold what was planned)."""
    planned = int(num(send.bytes))
    spec = tensor_of(send.value, catalog)
    if spec is None:
        return _utf8(planned)
    if isinstance(send.value.type, TEXTLIKE):
        return _utf8(max(spec.shape[0], planned))
    return spec


def tensor_of(value: SSAValue, catalog: Catalog) -> TensorSpec | None:
    """dtype and planned shape of `value`, from its type and the op that makes it; None where only the run
    knows (a text a tool returns, audio the request brings)."""
    t: Attribute = value.type
    op = value.owner if isinstance(value.owner, Operation) else None
    if isinstance(op, X.RecvOp) and isinstance(send := op.handle.owner, X.SendOp):
        inner = tensor_of(send.value, catalog)   # a received value is what was sent
        if inner is not None or not isinstance(t, TEXTLIKE):
            return inner
    if isinstance(t, IntegerType):
        return TensorSpec(dtype="bool" if t.width.data == 1 else "int64", shape=[], dims=[])
    if isinstance(t, IndexType):
        return TensorSpec(dtype="int64", shape=[], dims=[])
    if isinstance(t, TEXTLIKE):
        n = _textlike_bytes(op) if op is not None else None
        return None if n is None else _utf8(n)
    if isinstance(t, A.TokensType):
        return _tokens(op, catalog)
    if isinstance(t, A.KVType) and isinstance(op, O.PrefillOp):
        return kv_tensor(catalog.model(op.model.data), _p95(op, "prompt_tokens"))
    if isinstance(t, A.VecType) and isinstance(op, O.EncodeOp):
        enc = catalog.model(op.model.data).encoder
        if enc is None:
            return None
        if enc.audio_mels:   # a speech encoder's hidden states, one row per frame
            return TensorSpec(dtype=TORCH_DTYPES[catalog.model(op.model.data).dtype],
                              shape=[_p95(op, "tokens"), enc.d_model], dims=["frames", "d_model"], dynamic=["frames"])
        return TensorSpec(dtype="float32", shape=[enc.d_model], dims=["dim"])   # a text embedding
    if isinstance(t, A.AudioType) and isinstance(op, O.VocodeOp):
        voc = catalog.model(op.model.data).vocoder
        if voc is None:
            return None
        return TensorSpec(dtype="float32", shape=[_p95(op, "tokens") * math.prod(voc.upsample_rates)],
                          dims=["samples"], dynamic=["samples"])
    return None


def _tokens(op: Operation | None, catalog: Catalog) -> TensorSpec | None:
    """Token ids: a prompt at its p95 length, or a generation at its max_tokens cap (codebooks as a 2nd axis)."""
    if isinstance(op, O.TokenizeOp):
        return TensorSpec(dtype="int64", shape=[_p95(op, "tokens")], dims=["tokens"], dynamic=["tokens"])
    if isinstance(op, O.DecodeOp):
        cap = int(num(op.max_tokens))
        dec = catalog.model(op.model.data).decoder
        if dec is not None and dec.codebooks > 1:
            return TensorSpec(dtype="int64", shape=[cap, dec.codebooks], dims=["tokens", "codebooks"],
                              dynamic=["tokens"])
        return TensorSpec(dtype="int64", shape=[cap], dims=["tokens"], dynamic=["tokens"])
    return None
