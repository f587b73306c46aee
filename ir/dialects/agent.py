"""The `agent` dialect: one op per step of an agent workflow (an LLM call, a tool call, a retrieval, ...).

Control flow is upstream's `scf` dialect with agent ops inside its regions (see plait.ir.dialects.control):
a loop is an `scf.while`, a branch an `scf.index_switch`, a map an `scf.for`; sub-agents are `func.func`
reached by `func.call`. Upstream MLIR's IRDL-defined ops have no traits, so none can be a terminator;
`scf.yield` and `scf.condition` end the regions, and values keep their types across them.
"""

from __future__ import annotations

import json
import math
import re
import string as _string
from collections.abc import Sequence
from typing import ClassVar

from xdsl.dialects.builtin import (
    ArrayAttr,
    DictionaryAttr,
    FloatAttr,
    IndexType,
    IntegerAttr,
    IntegerType,
    StringAttr,
    i1,
)
from xdsl.ir import Attribute, Dialect, Operation, ParametrizedAttribute, SSAValue, TypeAttribute
from xdsl.irdl import (
    IRDLOperation,
    VarConstraint,
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
)
from xdsl.parser import AttrParser
from xdsl.pattern_rewriter import RewritePattern
from xdsl.printer import Printer
from xdsl.traits import HasCanonicalizationPatternsTrait, Pure
from xdsl.utils.exceptions import VerifyException

from plait.ir.dialects._base import f64, fail, i64, num, show, string

# ----------------------------------------------------------------------------------------------------
# Types
# ----------------------------------------------------------------------------------------------------


@irdl_attr_definition
class TextType(ParametrizedAttribute, TypeAttribute):
    """A string of text (a prompt, an answer, a transcript)."""

    name = "agent.text"


@irdl_attr_definition
class TextsType(ParametrizedAttribute, TypeAttribute):
    """A list of texts (what agent.gather and a map produce)."""

    name = "agent.texts"


@irdl_attr_definition
class JsonType(ParametrizedAttribute, TypeAttribute):
    """A JSON value (structured tool output, a list of non-text values)."""

    name = "agent.json"


@irdl_attr_definition
class TokensType(ParametrizedAttribute, TypeAttribute):
    """Token ids of `model`'s tokenizer (or audio codes of a speech model): only that model reads them."""

    name = "agent.tokens"
    model: StringAttr

    def __init__(self, model: str | StringAttr):
        super().__init__(string(model))


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


@irdl_attr_definition
class DistAttr(ParametrizedAttribute):
    """A planning figure: its mean and its 95th percentile (`#agent.dist<900.0, 1400.0>`, tokens or ms).

    Ops check 0 <= mean <= p95 (and p95 <= a limit such as max_tokens) in their verifiers, so the
    message names the op and the attribute.
    """

    name = "agent.dist"
    mean: FloatAttr
    p95: FloatAttr

    def __init__(self, mean: float, p95: float | None = None):
        super().__init__(f64(mean), f64(mean if p95 is None else p95))

    @property
    def values(self) -> tuple[float, float]:
        """(mean, p95) as Python floats."""
        return float(self.mean.value.data), float(self.p95.value.data)

    def print_parameters(self, printer: Printer) -> None:
        """`<900.0, 1400.0>`: MLIR float literals, which upstream reads as f64 attributes."""
        printer.print_string(f"<{_float_literal(self.values[0])}, {_float_literal(self.values[1])}>")

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> Sequence[Attribute]:
        with parser.in_angle_brackets():
            mean = parser.parse_number()
            parser.parse_punctuation(",")
            p95 = parser.parse_number()
        return (f64(float(mean)), f64(float(p95)))


SAMPLING_DEFAULTS: dict[str, float] = {"temperature": 0.0, "top_p": 1.0}
"""What an LLM call samples with unless it says: greedy (temperature 0), no nucleus cut, no seed, no stop strings."""
SAMPLING_KEYS = ("temperature", "top_p", "seed", "stop", "json_schema")


@irdl_attr_definition
class SamplingAttr(ParametrizedAttribute):
    """How an LLM call samples: `#agent.sampling<{temperature = 0.7, top_p = 0.9, seed = 7, stop = ["\0A"]}>`.

    One dictionary parameter, so upstream MLIR reads it as a builtin dictionary (bare floats are f64, bare
    integers i64). temperature and top_p are always present; seed (a fixed seed for the sampler), stop
    (strings that end the generation) and json_schema (the JSON Schema, as compact JSON text, that the
    answer is decoded under) only when the agent gives them. The schema rides here, not in an attribute of
    its own, because it is how the call decodes: it travels with the rest of sampling to op.decode and the
    engine.
    """

    name = "agent.sampling"
    params: DictionaryAttr

    def __init__(self, temperature: float = 0.0, top_p: float = 1.0, seed: int | None = None,
                 stop: Sequence[str] = (), json_schema: str | None = None):
        entries: dict[str, Attribute] = {"temperature": f64(temperature), "top_p": f64(top_p)}
        if seed is not None:
            entries["seed"] = i64(seed)
        if stop:
            entries["stop"] = ArrayAttr([StringAttr(s) for s in stop])
        if json_schema is not None:
            entries["json_schema"] = StringAttr(json_schema)
        super().__init__(DictionaryAttr(entries))

    @property
    def temperature(self) -> float:
        return float(num(self.params.data["temperature"]))

    @property
    def top_p(self) -> float:
        return float(num(self.params.data["top_p"]))

    @property
    def seed(self) -> int | None:
        seed = self.params.data.get("seed")
        return None if seed is None else int(num(seed))

    @property
    def stop(self) -> list[str]:
        stop = self.params.data.get("stop")
        return [] if not isinstance(stop, ArrayAttr) else [s.data for s in stop.data if isinstance(s, StringAttr)]

    @property
    def json_schema(self) -> str | None:
        schema = self.params.data.get("json_schema")
        return schema.data if isinstance(schema, StringAttr) else None

    def as_json(self) -> dict[str, object]:
        """{temperature, top_p[, seed][, stop][, json_schema]}: what a device program hands the engine."""
        out: dict[str, object] = {"temperature": self.temperature, "top_p": self.top_p}
        if self.seed is not None:
            out["seed"] = self.seed
        if self.stop:
            out["stop"] = self.stop
        if self.json_schema is not None:
            out["json_schema"] = json.loads(self.json_schema)
        return out

    def verify(self) -> None:
        data = self.params.data
        if unknown := [k for k in data if k not in SAMPLING_KEYS]:
            raise VerifyException(f"#agent.sampling has unknown key {unknown[0]!r}; the keys are "
                                  f"{', '.join(SAMPLING_KEYS)}")
        for key in ("temperature", "top_p"):
            if not isinstance(data.get(key), FloatAttr):
                raise VerifyException(f"#agent.sampling needs {key} as a float, got {data.get(key)}")
        if not (math.isfinite(self.temperature) and self.temperature >= 0):
            raise VerifyException(f"#agent.sampling temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise VerifyException(f"#agent.sampling top_p must be in (0, 1], got {self.top_p}")
        if "seed" in data and not isinstance(data["seed"], IntegerAttr):
            raise VerifyException(f"#agent.sampling seed must be an integer, got {data['seed']}")
        if "stop" in data and not (isinstance(stop := data["stop"], ArrayAttr)
                                   and all(isinstance(x, StringAttr) for x in stop.data)):
            raise VerifyException(f"#agent.sampling stop must be a list of strings, got {data['stop']}")
        if "json_schema" in data:
            schema = data["json_schema"]
            try:
                ok = isinstance(schema, StringAttr) and isinstance(json.loads(schema.data), dict)
            except json.JSONDecodeError:
                ok = False
            if not ok:
                raise VerifyException(f"#agent.sampling json_schema must be a string holding a JSON object, "
                                      f"got {schema}")

    def print_parameters(self, printer: Printer) -> None:
        """`<{temperature = 0.7, top_p = 0.9, seed = 7, stop = ["\0A"]}>`: short floats, keys in a fixed order."""
        parts = [f"temperature = {_float_literal(self.temperature)}", f"top_p = {_float_literal(self.top_p)}"]
        if self.seed is not None:
            parts.append(f"seed = {self.seed}")
        printer.print_string("<{" + ", ".join(parts))
        if self.stop:
            printer.print_string(", stop = ")
            printer.print_attribute(self.params.data["stop"])
        if self.json_schema is not None:
            printer.print_string(", json_schema = ")
            printer.print_attribute(self.params.data["json_schema"])
        printer.print_string("}>")

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> Sequence[Attribute]:
        with parser.in_angle_brackets():
            params = parser.parse_attribute()
        if not isinstance(params, DictionaryAttr):
            parser.raise_error("#agent.sampling takes one dictionary: <{temperature = 0.7, top_p = 0.9}>")
        return (params,)


def _float_literal(value: float) -> str:
    """`value` as an MLIR float literal (it needs a '.': 1e-05 -> 1.0e-05), exact for round trips."""
    text = repr(float(value))
    mantissa, e, exponent = text.partition("e")
    return text if "." in mantissa else f"{mantissa}.0{e}{exponent}"


def dist(op: Operation, name: str) -> tuple[float, float]:
    """(mean, p95) of `op`'s #agent.dist attribute `name`."""
    attr = op.attributes[name]
    assert isinstance(attr, DistAttr), f"{op.name} attribute {name!r} is not an #agent.dist"
    return attr.values


def check_dist(op: Operation, name: str, limit: str | None = None) -> None:
    """Check 0 <= mean <= p95 (<= the attribute `limit`) for `op`'s #agent.dist attribute `name`."""
    m, p = dist(op, name)
    if m < 0:
        fail(op, f"attribute '{name}' has mean {m}; it must be >= 0")
    if p < m:
        fail(op, f"attribute '{name}' has p95 {p} below its mean {m}; the p95 must be >= the mean")
    if limit is not None and p > (lim := num(op.attributes[limit])):
        fail(op, f"attribute '{name}' has p95 {p} above '{limit}' ({lim}); it must be <= {lim}")


AgentValue = (base(TextType) | base(TextsType) | base(JsonType) | base(TokensType) | base(KVType)
              | base(VecType) | base(DocsType) | base(AudioType))
"""Any agent-level value type."""
ToolValue = AgentValue | base(IntegerType)
"""What a tool passes and returns: agent values, i1 (a predicate) and i64 (a branch selector)."""
ListResult = base(TextsType) | base(JsonType)
Items = base(TextsType) | base(DocsType)
"""What a map runs over."""

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


class TemplateOpBase(IRDLOperation):
    """Format `args` into `template` (str.format syntax): one value per field."""

    args = var_operand_def(AgentValue)
    result = result_def(TextType)
    template = attr_def(StringAttr)
    traits = lazy_traits_def(lambda: (Pure(), TemplateCanonicalization()))
    assembly_format = "`(` $args `)` attr-dict `:` functional-type($args, $result)"

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
    prompt_tokens = attr_def(DistAttr)
    output_tokens = attr_def(DistAttr)

    FIGURES: ClassVar[tuple[str, ...]] = ("prompt_tokens", "output_tokens")

    @staticmethod
    def figures(model: str, max_tokens: int, prompt_tokens: float, prompt_tokens_p95: float | None,
                output_tokens: float, output_tokens_p95: float | None) -> dict[str, Attribute]:
        """The attribute dict; a missing p95 defaults to the mean."""
        return {"model": StringAttr(model), "max_tokens": i64(max_tokens),
                "prompt_tokens": DistAttr(prompt_tokens, prompt_tokens_p95),
                "output_tokens": DistAttr(output_tokens, output_tokens_p95)}

    def verify_(self) -> None:
        if (limit := num(self.max_tokens)) < 1:
            fail(self, f"attribute 'max_tokens' must be >= 1, got {limit}")
        check_dist(self, "prompt_tokens")
        check_dist(self, "output_tokens", "max_tokens")


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
    return {"tool": StringAttr(tool), "latency_ms": DistAttr(latency_ms, latency_ms_p95), "cpu": f64(cpu)}


def tool_arguments(params: Sequence[str], constants: dict[str, str | int | float | bool]) -> dict[str, Attribute]:
    """A tool call's constant arguments (`search(q, 10, region="us")`), as discardable attributes: `params`
    names the parameter each operand binds, `constants` the rest. Empty when every argument is an operand,
    so calls without constants print as before. Booleans are i1, integers i64, floats f64."""
    if not constants:
        return {}

    def attr(value: str | int | float | bool) -> Attribute:
        if isinstance(value, bool):
            return IntegerAttr(int(value), IntegerType(1))
        if isinstance(value, int):
            return IntegerAttr(value, IntegerType(64))
        if isinstance(value, float):
            return f64(value)
        return StringAttr(value)
    return {"params": ArrayAttr([StringAttr(p) for p in params]),
            "constants": DictionaryAttr({k: attr(v) for k, v in constants.items()})}


TOOL_ARGUMENT_ATTRS = ("params", "constants")
"""The attributes tool_arguments makes; lowering carries them from agent.tool_call to op.py_call."""


def check_tool(op: Operation) -> None:
    """0 <= latency_ms mean <= p95, cpu > 0, an integer result is i1 or i64."""
    if (cpu := num(op.attributes["cpu"])) <= 0:
        fail(op, f"attribute 'cpu' (cores) must be > 0, got {cpu}")
    check_dist(op, "latency_ms")
    if isinstance(t := op.results[0].type, IntegerType) and t.width.data not in (1, 64):
        fail(op, f"result must be i1 (a predicate) or i64 (a selector), got {show(t)}")


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
    sampling = attr_def(SamplingAttr)
    assembly_format = "$prompt attr-dict `:` type($prompt) `->` type($result)"

    def __init__(self, prompt: SSAValue | Operation, *, model: str, max_tokens: int,
                 prompt_tokens: float, output_tokens: float, prompt_tokens_p95: float | None = None,
                 output_tokens_p95: float | None = None, json: bool = False, sampling: SamplingAttr | None = None):
        attributes = self.figures(model, max_tokens, prompt_tokens, prompt_tokens_p95, output_tokens,
                                  output_tokens_p95)
        super().__init__(operands=[prompt], result_types=[JsonType() if json else TextType()],
                         attributes=attributes | {"sampling": sampling or SamplingAttr()})


@irdl_op_definition
class STTOp(LLMFiguresBase):
    """Speech to text: a speech encoder over `audio`, then a text decoder (prompt_tokens: encoder frames)."""

    name = "agent.stt"
    audio = operand_def(AudioType)
    result = result_def(TextType)
    assembly_format = "$audio attr-dict `:` type($audio) `->` type($result)"

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
    assembly_format = "$text attr-dict `:` type($text) `->` type($result)"

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
    input_tokens = attr_def(DistAttr)
    traits = traits_def(Pure())
    assembly_format = "$text attr-dict `:` type($text) `->` type($result)"

    def __init__(self, text: SSAValue | Operation, *, model: str, input_tokens: float,
                 input_tokens_p95: float | None = None):
        super().__init__(operands=[text], result_types=[VecType()],
                         attributes={"model": StringAttr(model),
                                     "input_tokens": DistAttr(input_tokens, input_tokens_p95)})

    def verify_(self) -> None:
        check_dist(self, "input_tokens")


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
    assembly_format = "$query attr-dict `:` type($query) `->` type($result)"

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
    latency_ms = attr_def(DistAttr)
    cpu = attr_def(FloatAttr)
    assembly_format = "`(` $args `)` attr-dict `:` functional-type($args, $result)"

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
    assembly_format = "`(` $parts `)` attr-dict `:` functional-type($parts, $result)"

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
    """Carries a value of any type into a variadic slot of mixed types (as !agent.json).

    Upstream IRDL binds one type per variadic slot, so the emitter boxes the operands of an agent.prompt,
    agent.tool_call or agent.gather whose types differ. Nothing is unboxed: control flow keeps types.
    """

    name = "agent.box"
    value = operand_def(ToolValue)
    result = result_def(JsonType)
    traits = traits_def(Pure())
    assembly_format = "$value attr-dict `:` type($value)"

    def __init__(self, value: SSAValue | Operation):
        super().__init__(operands=[value], result_types=[JsonType()])


@irdl_op_definition
class SelectArmOp(IRDLOperation):
    """The index of the arm to run, for the scf.index_switch of a branch: the position of the text
    `selector` in `arms`, or, for an i1 selector (exactly two arms), 0 when true and 1 when false.
    """

    name = "agent.select_arm"
    selector = operand_def(base(TextType) | eq(i1))
    result = result_def(IndexType)
    arms = attr_def(ArrayAttr[StringAttr])
    traits = traits_def(Pure())
    assembly_format = "$selector attr-dict `:` type($selector)"

    def __init__(self, selector: SSAValue | Operation, arms: Sequence[str]):
        super().__init__(operands=[selector], result_types=[IndexType()],
                         attributes={"arms": ArrayAttr([StringAttr(a) for a in arms])})

    def verify_(self) -> None:
        if len(arms := self.arms.data) < 2:
            fail(self, f"needs at least 2 arms, got {len(arms)}")
        if self.selector.type == i1 and len(arms) != 2:
            fail(self, f"an i1 selector picks one of exactly 2 arms, but attribute 'arms' has {len(arms)}")


# ----------------------------------------------------------------------------------------------------
# Lists, for the scf.for of a map: count the items, take one, collect the answers
# ----------------------------------------------------------------------------------------------------


@irdl_op_definition
class CountOp(IRDLOperation):
    """How many elements `items` holds (the upper bound of a map's scf.for)."""

    name = "agent.count"
    items = operand_def(Items)
    result = result_def(IndexType)
    traits = traits_def(Pure())
    assembly_format = "$items attr-dict `:` type($items)"

    def __init__(self, items: SSAValue | Operation):
        super().__init__(operands=[items], result_types=[IndexType()])


@irdl_op_definition
class ItemOp(IRDLOperation):
    """Element `index` of `items`, as text (a retrieved document is its text)."""

    name = "agent.item"
    items = operand_def(Items)
    index = operand_def(IndexType)
    result = result_def(TextType)
    traits = traits_def(Pure())
    assembly_format = "$items `[` $index `]` attr-dict `:` type($items)"

    def __init__(self, items: SSAValue | Operation, index: SSAValue | Operation):
        super().__init__(operands=[items, index], result_types=[TextType()])


@irdl_op_definition
class EmptyOp(IRDLOperation):
    """An empty list (the accumulator a map's scf.for starts from)."""

    name = "agent.empty"
    result = result_def(ListResult)
    traits = traits_def(Pure())
    assembly_format = "attr-dict `:` type($result)"

    def __init__(self, result_type: Attribute):
        super().__init__(result_types=[result_type])


@irdl_op_definition
class AppendOp(IRDLOperation):
    """`list` with `value` added at the end: !agent.texts takes text, !agent.json takes anything."""

    name = "agent.append"
    T: ClassVar = VarConstraint("T", ListResult)
    list = operand_def(T)
    value = operand_def(ToolValue)
    result = result_def(T)
    traits = traits_def(Pure())
    assembly_format = "$list `,` $value attr-dict `:` type($list) `,` type($value)"

    def __init__(self, items: SSAValue | Operation, value: SSAValue | Operation):
        super().__init__(operands=[items, value], result_types=[SSAValue.get(items).type])

    def verify_(self) -> None:
        if isinstance(self.list.type, TextsType) and not isinstance(self.value.type, TextType):
            fail(self, f"appends a {show(self.value.type)} to {show(self.list.type)}; a list of texts takes "
                       "!agent.text (collect other values in !agent.json)")

Agent = Dialect(
    "agent",
    [
        # model steps
        PromptOp, LLMCallOp, STTOp, TTSOp, EmbedOp, RetrieveOp, ToolCallOp, GatherOp,
        # plumbing
        BoxOp, SelectArmOp,
        # lists (map)
        CountOp, ItemOp, EmptyOp, AppendOp,
    ],
    [TextType, TextsType, JsonType, TokensType, KVType, VecType, DocsType, AudioType, DistAttr, SamplingAttr],
)
