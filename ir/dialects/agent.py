"""The `agent` dialect: one op per step of an agent workflow (an LLM call, a tool call, a retrieval, ...).

Control flow (loop, branch, map, call) refers to its bodies by symbol: each body is a `func.func` in the
same module. Upstream MLIR's IRDL-defined ops cannot be terminators (IRDL has no traits), so a region of
an agent op could not end in an agent op; a function body ends in `func.return`, which upstream verifies.
"""

from __future__ import annotations

import re
import string as _string
from collections.abc import Sequence
from typing import ClassVar

from xdsl.dialects.builtin import (
    I64,
    ArrayAttr,
    FloatAttr,
    IntegerAttr,
    IntegerType,
    StringAttr,
    SymbolRefAttr,
    i1,
)
from xdsl.ir import Attribute, Dialect, Operation, ParametrizedAttribute, SSAValue, TypeAttribute
from xdsl.irdl import (
    AttrSizedOperandSegments,
    IRDLOperation,
    attr_def,
    base,
    eq,
    irdl_attr_definition,
    irdl_op_definition,
    lazy_traits_def,
    operand_def,
    result_def,
    traits_def,
    var_operand_def,
    var_result_def,
)
from xdsl.pattern_rewriter import RewritePattern
from xdsl.traits import HasCanonicalizationPatternsTrait, Pure

from plait.ir.dialects._base import (
    callee_type,
    check_figures,
    check_signature,
    f64,
    fail,
    i64,
    num,
    show,
    string,
)

# ----------------------------------------------------------------------------------------------------
# Types
# ----------------------------------------------------------------------------------------------------


@irdl_attr_definition
class TextType(ParametrizedAttribute, TypeAttribute):
    """A string of text (a prompt, an answer, a transcript)."""

    name = "agent.text"


@irdl_attr_definition
class TextsType(ParametrizedAttribute, TypeAttribute):
    """A list of texts (what agent.gather and agent.map produce)."""

    name = "agent.texts"


@irdl_attr_definition
class JsonType(ParametrizedAttribute, TypeAttribute):
    """A JSON value (structured tool output, a list of non-text values)."""

    name = "agent.json"


@irdl_attr_definition
class TokensType(ParametrizedAttribute, TypeAttribute):
    """A sequence of token ids (text tokens, or audio codes for speech models)."""

    name = "agent.tokens"


@irdl_attr_definition
class KVType(ParametrizedAttribute, TypeAttribute):
    """The KV cache of one sequence in `model`: what op.prefill makes and op.decode consumes."""

    name = "agent.kv"
    model: StringAttr

    def __init__(self, model: str | StringAttr):
        super().__init__(string(model))


@irdl_attr_definition
class VecType(ParametrizedAttribute, TypeAttribute):
    """Dense vectors: text embeddings, or a speech encoder's hidden states."""

    name = "agent.vec"


@irdl_attr_definition
class DocsType(ParametrizedAttribute, TypeAttribute):
    """Retrieved documents (the k nearest neighbours of a query)."""

    name = "agent.docs"


@irdl_attr_definition
class AudioType(ParametrizedAttribute, TypeAttribute):
    """A waveform."""

    name = "agent.audio"


AgentValue = (base(TextType) | base(TextsType) | base(JsonType) | base(TokensType) | base(KVType)
              | base(VecType) | base(DocsType) | base(AudioType))
"""Any agent-level value type."""
ToolValue = AgentValue | base(IntegerType)
"""What a tool passes and returns: agent values, i1 (a predicate) and i64 (a branch selector)."""
ListResult = base(TextsType) | base(JsonType)

# ----------------------------------------------------------------------------------------------------
# Shared bases
# ----------------------------------------------------------------------------------------------------


def template_fields(template: str) -> int:
    """How many values `template` formats: one per `{}` field plus one per distinct named/numbered field."""
    auto, named = 0, set()
    for _, field, _, _ in _string.Formatter().parse(template):
        if field is None:
            continue
        if field == "":
            auto += 1
        else:
            named.add(re.split(r"[.\[]", field)[0])
    return auto + len(named)


class TemplateCanonicalization(HasCanonicalizationPatternsTrait):
    """agent.prompt / op.format of the template `{0}` over one text is that text."""

    @classmethod
    def get_canonicalization_patterns(cls) -> tuple[RewritePattern, ...]:
        from plait.ir.dialects.canonical import IdentityTemplate

        return (IdentityTemplate(),)


class UnboxCanonicalization(HasCanonicalizationPatternsTrait):
    """agent.unbox(agent.box(x)) is x."""

    @classmethod
    def get_canonicalization_patterns(cls) -> tuple[RewritePattern, ...]:
        from plait.ir.dialects.canonical import UnboxOfBox

        return (UnboxOfBox(),)


class TemplateOpBase(IRDLOperation):
    """Format `args` into `template` (str.format syntax): one value per field."""

    args = var_operand_def(AgentValue)
    result = result_def(TextType)
    template = attr_def(StringAttr)
    traits = lazy_traits_def(lambda: (Pure(), TemplateCanonicalization()))

    def __init__(self, template: str, args: Sequence[SSAValue | Operation]):
        super().__init__(operands=[args], result_types=[TextType()],
                         attributes={"template": StringAttr(template)})

    def verify_(self) -> None:
        try:
            want = template_fields(self.template.data)
        except ValueError as err:
            fail(self, f"attribute 'template' is not a valid format string ({err}): {self.template.data!r}")
        if want != len(self.args):
            fail(self, f"template {self.template.data!r} has {want} field(s), but the op has "
                       f"{len(self.args)} operand(s) in 'args'")


class LLMFiguresBase(IRDLOperation):
    """An op that runs a generative model: model, max_tokens and expected prompt/output token counts."""

    model = attr_def(StringAttr)
    max_tokens = attr_def(IntegerAttr)
    prompt_tokens = attr_def(FloatAttr)
    prompt_tokens_p95 = attr_def(FloatAttr)
    output_tokens = attr_def(FloatAttr)
    output_tokens_p95 = attr_def(FloatAttr)

    FIGURES: ClassVar[tuple[str, ...]] = ("prompt_tokens", "prompt_tokens_p95", "output_tokens",
                                          "output_tokens_p95")

    @staticmethod
    def figures(model: str, max_tokens: int, prompt_tokens: float, prompt_tokens_p95: float | None,
                output_tokens: float, output_tokens_p95: float | None) -> dict[str, Attribute]:
        """The attribute dict; a missing p95 defaults to the mean."""
        return {
            "model": StringAttr(model), "max_tokens": i64(max_tokens),
            "prompt_tokens": f64(prompt_tokens),
            "prompt_tokens_p95": f64(prompt_tokens if prompt_tokens_p95 is None else prompt_tokens_p95),
            "output_tokens": f64(output_tokens),
            "output_tokens_p95": f64(output_tokens if output_tokens_p95 is None else output_tokens_p95),
        }

    def verify_(self) -> None:
        if (limit := num(self.max_tokens)) < 1:
            fail(self, f"attribute 'max_tokens' must be >= 1, got {limit}")
        check_figures(self, "prompt_tokens", "prompt_tokens_p95")
        check_figures(self, "output_tokens", "output_tokens_p95", "max_tokens")


def search_attributes(index: str, k: int, doc_tokens: int, index_docs: int, dim: int) -> dict[str, Attribute]:
    """The attributes of agent.retrieve and op.ann_search."""
    return {"index": StringAttr(index), "k": i64(k), "doc_tokens": i64(doc_tokens),
            "index_docs": i64(index_docs), "dim": i64(dim)}


def check_search(op: Operation) -> None:
    """k >= 1; doc_tokens, index_docs and dim >= 0 (agent.retrieve, op.ann_search)."""
    if (k := num(op.attributes["k"])) < 1:
        fail(op, f"attribute 'k' must be >= 1, got {k}")
    for name in ("doc_tokens", "index_docs", "dim"):
        if (value := num(op.attributes[name])) < 0:
            fail(op, f"attribute '{name}' must be >= 0, got {value}")


def tool_attributes(tool: str, latency_ms: float, latency_ms_p95: float | None, cpu: float) -> dict[str, Attribute]:
    """The attributes of agent.tool_call and op.py_call; a missing p95 defaults to the mean."""
    return {"tool": StringAttr(tool), "latency_ms": f64(latency_ms),
            "latency_ms_p95": f64(latency_ms if latency_ms_p95 is None else latency_ms_p95), "cpu": f64(cpu)}


def check_tool(op: Operation) -> None:
    """latency_ms >= 0, latency_ms_p95 >= latency_ms, cpu > 0, an integer result is i1 or i64."""
    if (ms := num(op.attributes["latency_ms"])) < 0:
        fail(op, f"attribute 'latency_ms' must be >= 0, got {ms}")
    if (cpu := num(op.attributes["cpu"])) <= 0:
        fail(op, f"attribute 'cpu' (cores) must be > 0, got {cpu}")
    check_figures(op, "latency_ms", "latency_ms_p95")
    if isinstance(t := op.results[0].type, IntegerType) and t.width.data not in (1, 64):
        fail(op, f"result must be i1 (a predicate) or i64 (a selector), got {show(t)}")


def _symbol(name: str | SymbolRefAttr) -> SymbolRefAttr:
    return name if isinstance(name, SymbolRefAttr) else SymbolRefAttr(name)


# ----------------------------------------------------------------------------------------------------
# Model steps
# ----------------------------------------------------------------------------------------------------


@irdl_op_definition
class PromptOp(TemplateOpBase):
    """Format a prompt from a template and values (no model runs)."""

    name = "agent.prompt"


@irdl_op_definition
class LLMCallOp(LLMFiguresBase):
    """Run `prompt` through an LLM; the answer is text, or JSON for structured output."""

    name = "agent.llm_call"
    prompt = operand_def(TextType)
    result = result_def(base(TextType) | base(JsonType))

    def __init__(self, prompt: SSAValue | Operation, *, model: str, max_tokens: int,
                 prompt_tokens: float, output_tokens: float, prompt_tokens_p95: float | None = None,
                 output_tokens_p95: float | None = None, json: bool = False):
        super().__init__(operands=[prompt], result_types=[JsonType() if json else TextType()],
                         attributes=self.figures(model, max_tokens, prompt_tokens, prompt_tokens_p95,
                                                 output_tokens, output_tokens_p95))


@irdl_op_definition
class STTOp(LLMFiguresBase):
    """Speech to text: a speech encoder over `audio`, then a text decoder (prompt_tokens: encoder frames)."""

    name = "agent.stt"
    audio = operand_def(AudioType)
    result = result_def(TextType)

    def __init__(self, audio: SSAValue | Operation, *, model: str, max_tokens: int, prompt_tokens: float,
                 output_tokens: float, prompt_tokens_p95: float | None = None,
                 output_tokens_p95: float | None = None):
        super().__init__(operands=[audio], result_types=[TextType()],
                         attributes=self.figures(model, max_tokens, prompt_tokens, prompt_tokens_p95,
                                                 output_tokens, output_tokens_p95))


@irdl_op_definition
class TTSOp(LLMFiguresBase):
    """Text to speech: a decoder turns text tokens into audio codes (output_tokens), a vocoder renders them."""

    name = "agent.tts"
    text = operand_def(TextType)
    result = result_def(AudioType)
    vocoder = attr_def(StringAttr)

    def __init__(self, text: SSAValue | Operation, *, model: str, vocoder: str, max_tokens: int,
                 prompt_tokens: float, output_tokens: float, prompt_tokens_p95: float | None = None,
                 output_tokens_p95: float | None = None):
        attributes = self.figures(model, max_tokens, prompt_tokens, prompt_tokens_p95, output_tokens,
                                  output_tokens_p95)
        super().__init__(operands=[text], result_types=[AudioType()],
                         attributes=attributes | {"vocoder": StringAttr(vocoder)})


@irdl_op_definition
class EmbedOp(IRDLOperation):
    """Embed a text (or each of a list of texts) with an encoder model."""

    name = "agent.embed"
    text = operand_def(base(TextType) | base(TextsType))
    result = result_def(VecType)
    model = attr_def(StringAttr)
    input_tokens = attr_def(FloatAttr)
    input_tokens_p95 = attr_def(FloatAttr)
    traits = traits_def(Pure())

    def __init__(self, text: SSAValue | Operation, *, model: str, input_tokens: float,
                 input_tokens_p95: float | None = None):
        p95 = input_tokens if input_tokens_p95 is None else input_tokens_p95
        super().__init__(operands=[text], result_types=[VecType()],
                         attributes={"model": StringAttr(model), "input_tokens": f64(input_tokens),
                                     "input_tokens_p95": f64(p95)})

    def verify_(self) -> None:
        check_figures(self, "input_tokens", "input_tokens_p95")


class SearchBase(IRDLOperation):
    """A nearest-neighbour search: the `k` documents of `index` nearest to `query` (agent.retrieve,
    op.ann_search). `index_docs` vectors of width `dim` are searched (0: unknown); each document is about
    `doc_tokens` tokens long. Pure: it only reads the index."""

    query = operand_def(VecType)
    result = result_def(DocsType)
    index = attr_def(StringAttr)
    k = attr_def(IntegerAttr)
    doc_tokens = attr_def(IntegerAttr)
    index_docs = attr_def(IntegerAttr)
    dim = attr_def(IntegerAttr)
    traits = traits_def(Pure())

    def __init__(self, query: SSAValue | Operation, *, index: str, k: int, doc_tokens: int,
                 index_docs: int = 0, dim: int = 0):
        super().__init__(operands=[query], result_types=[DocsType()],
                         attributes=search_attributes(index, k, doc_tokens, index_docs, dim))

    def verify_(self) -> None:
        check_search(self)


@irdl_op_definition
class RetrieveOp(SearchBase):
    """Find the documents of `index` nearest to `query` (agent level)."""

    name = "agent.retrieve"


class ToolCallBase(IRDLOperation):
    """A Python tool call: its operands, result and planning attributes (agent.tool_call, op.py_call)."""

    args = var_operand_def(ToolValue)
    result = result_def(ToolValue)
    tool = attr_def(StringAttr)
    latency_ms = attr_def(FloatAttr)
    latency_ms_p95 = attr_def(FloatAttr)
    cpu = attr_def(FloatAttr)

    def __init__(self, tool: str, args: Sequence[SSAValue | Operation], result_type: Attribute, *,
                 latency_ms: float, cpu: float = 1.0, latency_ms_p95: float | None = None):
        super().__init__(operands=[args], result_types=[result_type],
                         attributes=tool_attributes(tool, latency_ms, latency_ms_p95, cpu))

    def verify_(self) -> None:
        check_tool(self)


@irdl_op_definition
class ToolCallOp(ToolCallBase):
    """Call the Python tool `tool` (also predicates: i1, and selectors: i64); it takes about latency_ms.

    Not pure: a tool may have effects (a search API, a clock), so it is never merged or dropped.
    """

    name = "agent.tool_call"


@irdl_op_definition
class GatherOp(IRDLOperation):
    """Fan-in: collect values into one list: !agent.texts if all are text, else !agent.json."""

    name = "agent.gather"
    parts = var_operand_def(AgentValue)
    result = result_def(ListResult)
    traits = traits_def(Pure())

    def __init__(self, parts: Sequence[SSAValue | Operation]):
        values = [SSAValue.get(p) for p in parts]
        texts = all(isinstance(v.type, TextType) for v in values)
        super().__init__(operands=[values], result_types=[TextsType() if texts else JsonType()])

    def verify_(self) -> None:
        if not self.parts:
            fail(self, "needs at least one operand in 'parts'")
        texts = all(isinstance(t, TextType) for t in self.parts.types)
        want = TextsType() if texts else JsonType()
        if self.result.type != want:
            fail(self, f"result must be {show(want)} for parts of types "
                       f"({', '.join(show(t) for t in self.parts.types)}), got {show(self.result.type)}")


# ----------------------------------------------------------------------------------------------------
# Plumbing: no model runs, nothing to place; these survive lowering unchanged and cost nothing
# ----------------------------------------------------------------------------------------------------


@irdl_op_definition
class BoxOp(IRDLOperation):
    """Carries a value of any type through a variadic slot of mixed types (as !agent.json).

    Upstream IRDL binds one type per variadic slot, so the emitter boxes the values of a slot whose
    types differ; agent.unbox gives the value back with its type.
    """

    name = "agent.box"
    value = operand_def(ToolValue)
    result = result_def(JsonType)
    traits = traits_def(Pure())

    def __init__(self, value: SSAValue | Operation):
        super().__init__(operands=[value], result_types=[JsonType()])


@irdl_op_definition
class UnboxOp(IRDLOperation):
    """The value an agent.box carried, with its own type back (see agent.box)."""

    name = "agent.unbox"
    boxed = operand_def(JsonType)
    result = result_def(ToolValue)
    traits = lazy_traits_def(lambda: (Pure(), UnboxCanonicalization()))

    def __init__(self, boxed: SSAValue | Operation, result_type: Attribute):
        super().__init__(operands=[boxed], result_types=[result_type])


@irdl_op_definition
class SelectArmOp(IRDLOperation):
    """The index of the arm to run, for agent.branch: the position of the text `selector` in `arms`,
    or, for an i1 selector (exactly two arms), 0 when true and 1 when false.
    """

    name = "agent.select_arm"
    selector = operand_def(base(TextType) | eq(i1))
    result = result_def(I64)
    arms = attr_def(ArrayAttr[StringAttr])
    traits = traits_def(Pure())

    def __init__(self, selector: SSAValue | Operation, arms: Sequence[str]):
        super().__init__(operands=[selector], result_types=[IntegerType(64)],
                         attributes={"arms": ArrayAttr([StringAttr(a) for a in arms])})

    def verify_(self) -> None:
        if len(arms := self.arms.data) < 2:
            fail(self, f"needs at least 2 arms, got {len(arms)}")
        if self.selector.type == i1 and len(arms) != 2:
            fail(self, f"an i1 selector picks one of exactly 2 arms, but attribute 'arms' has {len(arms)}")


# ----------------------------------------------------------------------------------------------------
# Control flow: bodies are func.func symbols of the same module
# ----------------------------------------------------------------------------------------------------


@irdl_op_definition
class LoopOp(IRDLOperation):
    """Run @body until it says done (at least once, at most max_iters times; expected_iters on average).

    @body has type (invariants..., carried...) -> (i1 done, carried...); the loop's results are the
    carried values after the last iteration.
    """

    name = "agent.loop"
    invariants = var_operand_def(ToolValue)
    inits = var_operand_def(ToolValue)
    results_ = var_result_def(ToolValue)
    body = attr_def(SymbolRefAttr)
    max_iters = attr_def(IntegerAttr)
    expected_iters = attr_def(FloatAttr)
    expected_iters_p95 = attr_def(FloatAttr)
    irdl_options = (AttrSizedOperandSegments(),)

    def __init__(self, body: str | SymbolRefAttr, invariants: Sequence[SSAValue | Operation],
                 inits: Sequence[SSAValue | Operation], *, max_iters: int, expected_iters: float,
                 expected_iters_p95: float | None = None):
        carried = [SSAValue.get(v) for v in inits]
        p95 = expected_iters if expected_iters_p95 is None else expected_iters_p95
        super().__init__(operands=[invariants, carried], result_types=[[v.type for v in carried]],
                         attributes={"body": _symbol(body), "max_iters": i64(max_iters),
                                     "expected_iters": f64(expected_iters), "expected_iters_p95": f64(p95)})

    def verify_(self) -> None:
        most, expected = num(self.max_iters), num(self.expected_iters)
        if most < 1:
            fail(self, f"attribute 'max_iters' must be >= 1, got {most}")
        if not 1 <= expected <= most:
            fail(self, f"attribute 'expected_iters' must be between 1 and max_iters ({most}), got {expected}")
        check_figures(self, "expected_iters", "expected_iters_p95", "max_iters")
        if tuple(self.results_.types) != tuple(self.inits.types):
            fail(self, f"results ({', '.join(map(show, self.results_.types))}) must have the types of "
                       f"'inits' ({', '.join(map(show, self.inits.types))})")
        check_signature(self, self.body, "body", [*self.invariants.types, *self.inits.types],
                        [i1, *self.inits.types])


@irdl_op_definition
class BranchOp(IRDLOperation):
    """Run arm number `selector` (from a selector tool) on `args`; arm i is taken with probabilities[i].

    Every arm is a func.func of type (args...) -> (results...).
    """

    name = "agent.branch"
    selector = operand_def(I64)
    args = var_operand_def(ToolValue)
    results_ = var_result_def(ToolValue)
    arms = attr_def(ArrayAttr[SymbolRefAttr])
    probabilities = attr_def(ArrayAttr[FloatAttr])

    def __init__(self, selector: SSAValue | Operation, arms: Sequence[str | SymbolRefAttr],
                 args: Sequence[SSAValue | Operation], result_types: Sequence[Attribute], *,
                 probabilities: Sequence[float]):
        super().__init__(operands=[selector, args], result_types=[list(result_types)],
                         attributes={"arms": ArrayAttr([_symbol(a) for a in arms]),
                                     "probabilities": ArrayAttr([f64(p) for p in probabilities])})

    def verify_(self) -> None:
        arms, probs = self.arms.data, [num(p) for p in self.probabilities.data]
        if len(arms) < 2:
            fail(self, f"needs at least 2 arms, got {len(arms)}")
        if len(probs) != len(arms):
            fail(self, f"attribute 'probabilities' has {len(probs)} entries, but the op has {len(arms)} arms")
        if any(not 0 <= p <= 1 for p in probs) or abs(sum(probs) - 1) > 1e-6:
            fail(self, f"attribute 'probabilities' must be in [0, 1] and sum to 1, got {probs}")
        for i, arm in enumerate(arms):
            check_signature(self, arm, f"arm {i}", list(self.args.types), list(self.results_.types))


@irdl_op_definition
class MapOp(IRDLOperation):
    """Run @body on every element of `items` (texts or docs; expected_len of them, concurrently).

    @body has type (!agent.text, invariants...) -> (T); the result is !agent.texts if T is text,
    else !agent.json.
    """

    name = "agent.map"
    items = operand_def(base(TextsType) | base(DocsType))
    invariants = var_operand_def(ToolValue)
    result = result_def(ListResult)
    body = attr_def(SymbolRefAttr)
    expected_len = attr_def(FloatAttr)
    expected_len_p95 = attr_def(FloatAttr)

    def __init__(self, body: str | SymbolRefAttr, items: SSAValue | Operation,
                 invariants: Sequence[SSAValue | Operation] = (), *, expected_len: float,
                 text_result: bool = True, expected_len_p95: float | None = None):
        p95 = expected_len if expected_len_p95 is None else expected_len_p95
        super().__init__(operands=[items, invariants], result_types=[TextsType() if text_result else JsonType()],
                         attributes={"body": _symbol(body), "expected_len": f64(expected_len),
                                     "expected_len_p95": f64(p95)})

    def verify_(self) -> None:
        if (n := num(self.expected_len)) < 0:
            fail(self, f"attribute 'expected_len' must be >= 0, got {n}")
        check_figures(self, "expected_len", "expected_len_p95")
        if (ftype := callee_type(self, self.body, "body")) is None:
            return
        inputs, outputs = (TextType(), *self.invariants.types), ftype.outputs.data
        if tuple(ftype.inputs.data) != inputs or len(outputs) != 1:
            fail(self, f"body @{self.body.root_reference.data} has type {show(ftype)}, but the op needs "
                       f"({', '.join(map(show, inputs))}) -> one value")
        want = TextsType() if isinstance(outputs[0], TextType) else JsonType()
        if self.result.type != want:
            fail(self, f"result must be {show(want)} when the body returns {show(outputs[0])}, "
                       f"got {show(self.result.type)}")


@irdl_op_definition
class CallOp(IRDLOperation):
    """Call a sub-agent: the func.func @callee of the same module (so it is lowered and placed once)."""

    name = "agent.call"
    args = var_operand_def(ToolValue)
    results_ = var_result_def(ToolValue)
    callee = attr_def(SymbolRefAttr)

    def __init__(self, callee: str | SymbolRefAttr, args: Sequence[SSAValue | Operation],
                 result_types: Sequence[Attribute]):
        super().__init__(operands=[args], result_types=[list(result_types)],
                         attributes={"callee": _symbol(callee)})

    def verify_(self) -> None:
        check_signature(self, self.callee, "callee", list(self.args.types), list(self.results_.types))


Agent = Dialect(
    "agent",
    [
        # model steps
        PromptOp, LLMCallOp, STTOp, TTSOp, EmbedOp, RetrieveOp, ToolCallOp, GatherOp,
        # plumbing
        BoxOp, UnboxOp, SelectArmOp,
        # control flow
        LoopOp, BranchOp, MapOp, CallOp,
    ],
    [TextType, TextsType, JsonType, TokensType, KVType, VecType, DocsType, AudioType],
)
