"""The `op` dialect: per-device operators that an agent step lowers to, each carrying what the cost model needs.

Every op class has `BATCHABLE`: whether a worker may batch several requests' instances of it into one
kernel call (model forwards may; Python tools and prompt formatting may not). Control flow (scf regions,
func.call) stays as it is; lowering rewrites the agent ops inside its regions like any other.

Token values carry their tokenizer's model (`!agent.tokens<"llama-3.1-8b">`): an op that reads tokens
checks they are its model's, as op.decode checks its KV cache.
"""

from __future__ import annotations

from typing import ClassVar

from xdsl.dialects.builtin import FloatAttr, IntegerAttr, StringAttr
from xdsl.ir import Attribute, Dialect, Operation, SSAValue
from xdsl.irdl import (
    AttrSizedOperandSegments,
    IRDLOperation,
    attr_def,
    base,
    irdl_op_definition,
    lazy_traits_def,
    operand_def,
    opt_operand_def,
    result_def,
    traits_def,
)
from xdsl.pattern_rewriter import RewritePattern
from xdsl.traits import HasCanonicalizationPatternsTrait, Pure

from plait.ir.dialects._base import fail, i64, num, show
from plait.ir.dialects.agent import (
    AudioType,
    DistAttr,
    JsonType,
    KVType,
    SamplingAttr,
    SearchBase,
    TemplateOpBase,
    TextsType,
    TextType,
    TokensType,
    ToolCallBase,
    VecType,
    check_dist,
)


class ModelOpBase(IRDLOperation):
    """An operator that runs (part of) `model`."""

    BATCHABLE: ClassVar[bool] = True
    model = attr_def(StringAttr)


class TokenCountOpBase(ModelOpBase):
    """An operator whose cost scales with `tokens` sequence positions (mean; tokens_p95 at the tail).

    Pure: the same input through the same model gives the same output (so cse shares it).
    """

    tokens = attr_def(DistAttr)
    traits = traits_def(Pure())

    @staticmethod
    def counts(model: str, tokens: float, tokens_p95: float | None) -> dict[str, Attribute]:
        return {"model": StringAttr(model), "tokens": DistAttr(tokens, tokens_p95)}

    def verify_(self) -> None:
        check_dist(self, "tokens")


class RetokenizeCanonicalization(HasCanonicalizationPatternsTrait):
    """op.tokenize(op.detokenize(t)) for one model is t."""

    @classmethod
    def get_canonicalization_patterns(cls) -> tuple[RewritePattern, ...]:
        from plait.ir.dialects.canonical import RetokenizeDetokenized

        return (RetokenizeDetokenized(),)


def _check_kv_model(op: IRDLOperation, kv: Attribute, model: StringAttr, what: str) -> None:
    if isinstance(kv, KVType) and kv.model != model:
        fail(op, f"{what} is a KV cache of model {kv.model.data!r}, but the op runs {model.data!r}")


def _check_tokens_model(op: IRDLOperation, tokens: Attribute, model: StringAttr, what: str) -> None:
    if isinstance(tokens, TokensType) and tokens.model != model:
        fail(op, f"{what} holds tokens of model {tokens.model.data!r}, but the op runs {model.data!r}; "
                 f"tokenize the text with {model.data!r}'s tokenizer")


# ----------------------------------------------------------------------------------------------------
# Text in and out
# ----------------------------------------------------------------------------------------------------


@irdl_op_definition
class FormatOp(TemplateOpBase):
    """Format a prompt from a template (CPU string work; lowered from agent.prompt)."""

    name = "op.format"
    BATCHABLE: ClassVar[bool] = False


@irdl_op_definition
class TokenizeOp(TokenCountOpBase):
    """Split `text` into `model`'s tokens (about `tokens` of them)."""

    name = "op.tokenize"
    text = operand_def(base(TextType) | base(TextsType))
    result = result_def(TokensType)
    traits = lazy_traits_def(lambda: (Pure(), RetokenizeCanonicalization()))
    assembly_format = "$text attr-dict `:` type($text) `->` type($result)"

    def __init__(self, text: SSAValue | Operation, *, model: str, tokens: float, tokens_p95: float | None = None):
        super().__init__(operands=[text], result_types=[TokensType(model)],
                         attributes=self.counts(model, tokens, tokens_p95))

    def verify_(self) -> None:
        super().verify_()
        _check_tokens_model(self, self.result.type, self.model, "result")


@irdl_op_definition
class DetokenizeOp(TokenCountOpBase):
    """Turn `model`'s tokens back into text, or into JSON for a schema-constrained decode."""

    name = "op.detokenize"
    tokens_in = operand_def(TokensType)
    result = result_def(base(TextType) | base(JsonType))
    assembly_format = "$tokens_in attr-dict `:` type($tokens_in) `->` type($result)"

    def __init__(self, tokens_in: SSAValue | Operation, *, model: str, tokens: float,
                 tokens_p95: float | None = None, json: bool = False):
        super().__init__(operands=[tokens_in], result_types=[JsonType() if json else TextType()],
                         attributes=self.counts(model, tokens, tokens_p95))

    def verify_(self) -> None:
        super().verify_()
        _check_tokens_model(self, self.tokens_in.type, self.model, "operand 'tokens_in'")


# ----------------------------------------------------------------------------------------------------
# Model forwards
# ----------------------------------------------------------------------------------------------------


@irdl_op_definition
class PrefillOp(ModelOpBase):
    """Run `prompt` (and/or an encoder's `context`, for speech decoders) through `model` once.

    Compute-bound; yields the KV cache that op.decode consumes. An optional `prefix_tokens` (f64, set by
    the prefix-reuse pass) is how many leading prompt tokens are expected to come from the KV cache.
    Pure: one prompt's prefill is shared by every decode of it (cse merges them; the runtime forks the
    cache, as prefix caching does).
    """

    name = "op.prefill"
    prompt = opt_operand_def(TokensType)
    context = opt_operand_def(VecType)
    kv = result_def(KVType)
    prompt_tokens = attr_def(DistAttr)
    irdl_options = (AttrSizedOperandSegments(),)
    traits = traits_def(Pure())
    assembly_format = ("(`(` $prompt^ `:` type($prompt) `)`)? (`context` `(` $context^ `:` type($context) `)`)? "
                       "attr-dict `->` type($kv)")

    def __init__(self, prompt: SSAValue | Operation | None, *, model: str, prompt_tokens: float,
                 prompt_tokens_p95: float | None = None, context: SSAValue | Operation | None = None):
        super().__init__(operands=[[] if prompt is None else [prompt], [] if context is None else [context]],
                         result_types=[KVType(model)],
                         attributes={"model": StringAttr(model),
                                     "prompt_tokens": DistAttr(prompt_tokens, prompt_tokens_p95)})

    def verify_(self) -> None:
        if self.prompt is None and self.context is None:
            fail(self, "needs a 'prompt' operand, a 'context' operand, or both; it has neither")
        _check_kv_model(self, self.kv.type, self.model, "result 'kv'")
        if self.prompt is not None:
            _check_tokens_model(self, self.prompt.type, self.model, "operand 'prompt'")
        check_dist(self, "prompt_tokens")
        if (reused := self.attributes.get("prefix_tokens")) is not None:   # set by the prefix-reuse pass
            mean = self.prompt_tokens.values[0]
            if not isinstance(reused, FloatAttr) or not 0 <= reused.value.data < max(mean, 1):
                fail(self, f"attribute 'prefix_tokens' must be an f64 in [0, prompt_tokens mean {mean}), got "
                           f"{show(reused)}; the last prompt token is always computed")


@irdl_op_definition
class DecodeOp(ModelOpBase):
    """Generate up to `max_tokens` tokens from a KV cache, one step per token (memory-bandwidth-bound).

    Not pure: it samples, so two decodes of one cache are two answers and are never merged.
    """

    name = "op.decode"
    kv = operand_def(KVType)
    result = result_def(TokensType)
    max_tokens = attr_def(IntegerAttr)
    output_tokens = attr_def(DistAttr)
    sampling = attr_def(SamplingAttr)   # the LLM call's, for the engine (greedy for speech models)
    assembly_format = "$kv attr-dict `:` type($kv) `->` type($result)"

    def __init__(self, kv: SSAValue | Operation, *, max_tokens: int, output_tokens: float,
                 output_tokens_p95: float | None = None, model: str | None = None,
                 sampling: SamplingAttr | None = None):
        kv_type = SSAValue.get(kv).type
        if model is None:
            assert isinstance(kv_type, KVType), f"op.decode needs a !agent.kv operand, got {show(kv_type)}"
            model = kv_type.model.data
        super().__init__(operands=[kv], result_types=[TokensType(model)],
                         attributes={"model": StringAttr(model), "max_tokens": i64(max_tokens),
                                     "output_tokens": DistAttr(output_tokens, output_tokens_p95),
                                     "sampling": sampling or SamplingAttr()})

    def verify_(self) -> None:
        _check_kv_model(self, self.kv.type, self.model, "operand 'kv'")
        if (limit := num(self.max_tokens)) < 1:
            fail(self, f"attribute 'max_tokens' must be >= 1, got {limit}")
        check_dist(self, "output_tokens", "max_tokens")
        _check_tokens_model(self, self.result.type, self.model, "result")


@irdl_op_definition
class EncodeOp(TokenCountOpBase):
    """An encoder forward: text tokens -> embeddings, or audio -> a speech encoder's hidden states.

    `tokens` counts the encoder's input positions (text tokens, or audio frames).
    """

    name = "op.encode"
    input = operand_def(base(TokensType) | base(AudioType))
    result = result_def(VecType)
    assembly_format = "$input attr-dict `:` type($input) `->` type($result)"

    def __init__(self, input: SSAValue | Operation, *, model: str, tokens: float, tokens_p95: float | None = None):
        super().__init__(operands=[input], result_types=[VecType()],
                         attributes=self.counts(model, tokens, tokens_p95))

    def verify_(self) -> None:
        super().verify_()
        _check_tokens_model(self, self.input.type, self.model, "operand 'input'")


@irdl_op_definition
class VocodeOp(TokenCountOpBase):
    """A vocoder forward: audio codes (`tokens` of them) from a TTS decoder -> a waveform."""

    name = "op.vocode"
    codes = operand_def(TokensType)
    result = result_def(AudioType)
    assembly_format = "$codes attr-dict `:` type($codes) `->` type($result)"

    def __init__(self, codes: SSAValue | Operation, *, model: str, tokens: float, tokens_p95: float | None = None):
        super().__init__(operands=[codes], result_types=[AudioType()],
                         attributes=self.counts(model, tokens, tokens_p95))


# ----------------------------------------------------------------------------------------------------
# Search and tools
# ----------------------------------------------------------------------------------------------------


@irdl_op_definition
class AnnSearchOp(SearchBase):
    """Approximate nearest-neighbour search on a device (brute force or an index); batchable over queries."""

    name = "op.ann_search"
    BATCHABLE: ClassVar[bool] = True


@irdl_op_definition
class PyCallOp(ToolCallBase):
    """Call the Python function `tool` on a CPU worker (tools, predicates, selectors); not batchable."""

    name = "op.py_call"
    BATCHABLE: ClassVar[bool] = False


Op = Dialect(
    "op",
    [
        # text in and out
        FormatOp, TokenizeOp, DetokenizeOp,
        # model forwards
        PrefillOp, DecodeOp, EncodeOp, VocodeOp,
        # search and tools
        AnnSearchOp, PyCallOp,
    ],
    [],
)
