"""The model steps an agent calls: plait.prompt, llm, embed, retrieve, stt, tts, gather."""

from __future__ import annotations

import json
import math
import string

from plait.sdk.dist import Dist
from plait.sdk.estimate import CHARS_PER_TOKEN
from plait.sdk.graph import AttrValue, Scalar
from plait.sdk.models import CONTEXT_WINDOWS, EMBED_DIMS, base_model, check_model
from plait.sdk.tracer import Sym, Tracer, require
from plait.sdk.types import ValueType
from plait.sdk.where import here

Figure = float | Dist
"""A planning figure: a number, or a Dist for a spread."""

MAX_INT = 2**63 - 1
"""The largest integer the IR carries (i64)."""

PROMPTABLE: tuple[ValueType, ...] = ("text", "texts", "docs", "json", "bool")


def planning_figure(tracer: Tracer, step: str, name: str, value: object) -> Dist:
    """`value` (a number >= 0 or a plait.Dist) as a Dist, or a TraceError naming `step`'s `name`."""
    if isinstance(value, bool) or not isinstance(value, int | float | Dist):
        tracer.fail(f"{step}'s {name} must be a number >= 0 or a plait.Dist, got {value!r:.40}",
                    f"To fix: pass {name}=300 or {name}=plait.Dist.normal(300, 50).")
    if isinstance(value, int | float) and not (math.isfinite(value) and value >= 0):
        tracer.fail(f"{step}'s {name} must be a finite number >= 0, got {value!r:.40}",
                    f"To fix: give {name} as a finite number >= 0.")
    return Dist.of(value)




def _count(tracer: Tracer, step: str, name: str, value: object, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= MAX_INT:
        tracer.fail(f"{step}'s {name} must be an integer from {low} to 2**63 - 1, got {value!r:.40}",
                    f"To fix: pass {name}=<integer >= {low}>.")
    return value


def _fits_context(tracer: Tracer, model: str, cap: int, prompt_tokens: Dist) -> None:
    """The prompt (its p95) plus max_tokens must fit `model`'s context window, as a serving engine requires."""
    window = CONTEXT_WINDOWS.get(base_model(model))   # a scale keeps its model's positions
    if window is None:
        return
    if cap > window:
        tracer.fail(f"plait.llm's max_tokens ({cap}) exceeds {model}'s context window of {window} tokens",
                    f"To fix: pass max_tokens <= {window} (less the prompt).")
    if prompt_tokens.p95 + cap > window:
        tracer.fail(f"plait.llm's prompt ({prompt_tokens.p95:.0f} tokens at p95) plus max_tokens ({cap}) "
                    f"exceeds {model}'s context window of {window} tokens",
                    "To fix: shorten the prompt (fewer or smaller documents), lower max_tokens, or use a "
                    "model with a longer context.")


def prompt(template: str, **values: object) -> Sym:
    """Fill `template`'s {fields} with values: a text step whose size the planner can estimate.

    Args:
        template: a str.format template; each {field} must be given in `values`.
        values: symbolic values (text, texts, docs, json, bool) or str/int/float/bool constants.
    Returns:
        text.
    """
    tracer = require("plait.prompt")
    if not isinstance(template, str):
        tracer.fail(f"plait.prompt's template must be a str, got {type(template).__name__}",
                    "To fix: pass the template text first: plait.prompt(TEMPLATE, q=question).")
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as err:
        tracer.fail(f"plait.prompt's template is not a valid format string: {err}",
                    "To fix: write fields as {name} and literal braces as {{ and }}.")
    bad = [f for f in fields if not f.isidentifier()]
    if bad:
        tracer.fail(f"plait.prompt's template fields must be plain names, got {{{bad[0]}}}",
                    "To fix: name each field ({docs}) and pass it as a keyword argument; compute "
                    "anything else in a @plait.tool.")
    missing = [f for f in fields if f not in values]
    unused = [k for k in values if k not in fields]
    if missing or unused:
        problem = f"needs {{{missing[0]}}}, which was not given" if missing else \
            f"has no field {{{unused[0]}}} for the value given as {unused[0]}="
        tracer.fail(f"plait.prompt's template {problem}",
                    f"template fields: {sorted(set(fields))}; values given: {sorted(values)}",
                    "To fix: pass exactly one keyword argument per {field} of the template.")
    syms: list[Sym] = []
    names: list[str] = []
    constants: dict[str, Scalar] = {}
    for key, value in values.items():
        if isinstance(value, Sym):
            if value.type not in PROMPTABLE:
                tracer.fail(f"type mismatch between steps: plait.prompt's {key} takes text, texts, docs, "
                            f"json or bool, but %{value.node.name} gives {value.type}",
                            f"To fix: a {value.type} value cannot be put in a prompt; pass the text it "
                            f"came from, or convert it with a @plait.tool.")
            syms.append(value)
            names.append(key)
        elif isinstance(value, str | int | float | bool):
            constants[key] = value
        else:
            tracer.fail(f"plait.prompt's {key} must be a traced value or a str/int/float/bool, "
                        f"got {type(value).__name__}", "To fix: format it into a str first.")
    static = template
    for key in names:
        static = static.replace("{" + key + "}", "")
    fixed = len(static.format(**{k: "" for k in names}, **constants)) // CHARS_PER_TOKEN
    attrs: dict[str, AttrValue] = {"template": template, "fields": names, "constants": constants,
                                   "template_tokens": fixed}
    return tracer.scope.add("prompt", syms, "text", attrs=attrs)


def _prompt_value(tracer: Tracer, value: object) -> Sym:
    if isinstance(value, str):
        return prompt(value.replace("{", "{{").replace("}", "}}"))
    return tracer.value(value, "plait.llm", "prompt", "text")


def _sampling(tracer: Tracer, temperature: object, top_p: object, stop: object, seed: object) -> dict[str, AttrValue]:
    """The sampling arguments the call gives (None: the default), checked; TraceErrors name the argument."""
    out: dict[str, AttrValue] = {}
    if temperature is not None:
        if isinstance(temperature, bool) or not isinstance(temperature, int | float) or \
                not (math.isfinite(temperature) and temperature >= 0):
            tracer.fail(f"plait.llm's temperature must be a finite number >= 0, got {temperature!r:.40}",
                        "To fix: pass temperature=0 for greedy decoding, or e.g. temperature=0.7 to sample.")
        out["temperature"] = float(temperature)
    if top_p is not None:
        if isinstance(top_p, bool) or not isinstance(top_p, int | float) or not 0 < top_p <= 1:
            tracer.fail(f"plait.llm's top_p must be a number in (0, 1], got {top_p!r:.40}",
                        "To fix: pass e.g. top_p=0.9 (the smallest set of tokens holding 90% of the probability), "
                        "or leave it out (1: no cut).")
        out["top_p"] = float(top_p)
    if stop is not None:
        if isinstance(stop, str):
            tracer.fail(f"plait.llm's stop must be a list of strings, got the string {stop!r:.40}",
                        f"To fix: pass stop=[{stop!r:.40}].")
        if not isinstance(stop, list | tuple) or not all(isinstance(s, str) and s for s in stop):
            tracer.fail(f"plait.llm's stop must be a list of non-empty strings, got {stop!r:.40}",
                        'To fix: pass e.g. stop=["\\nObservation:"].')
        if stop:
            out["stop"] = list(stop)
    if seed is not None:
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_INT:
            tracer.fail(f"plait.llm's seed must be an integer from 0 to 2**63 - 1, got {seed!r:.40}",
                        "To fix: pass seed=<integer>, or leave it out for a fresh seed per request.")
        out["seed"] = seed
    return out


def _json_schema(tracer: Tracer, schema: object) -> str:
    """The schema as canonical JSON text, checked: a dict that JSON encodes and that compiles to a grammar."""
    if not isinstance(schema, dict):
        tracer.fail(f"plait.llm's json_schema must be a dict (a JSON Schema), got {type(schema).__name__}",
                    'To fix: pass e.g. json_schema={"type": "object", "properties": {"city": {"type": "string"}}, '
                    '"required": ["city"]}.')
    try:
        text = json.dumps(schema, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as e:
        tracer.fail(f"plait.llm's json_schema must hold only JSON values: {e}",
                    "To fix: use str, int, float, bool, None, list and dict only.")
    try:
        import llguidance  # the grammar compiler the engine decodes with (plait.codegen.structured)
    except ImportError:  # pragma: no cover - a declared dependency
        return text
    grammar = llguidance.LLMatcher.grammar_from_json_schema(text, overrides={"whitespace_flexible": False})
    is_error, messages = llguidance.LLMatcher.validate_grammar_with_warnings(grammar)
    if is_error:
        tracer.fail(f"plait.llm's json_schema is not a JSON Schema constrained decoding supports: {messages[0]}",
                    "To fix: correct the schema; see docs/engine.md#structured-output for what is supported.")
    return text


def llm(model: str, prompt: object, max_tokens: int = 256, prompt_tokens: Figure | None = None,
        output_tokens: Figure | None = None, *, temperature: float | None = None, top_p: float | None = None,
        stop: list[str] | None = None, seed: int | None = None, json_schema: dict[str, object] | None = None) -> Sym:
    """Call an LLM once: a text step that generates at most `max_tokens` tokens.

    Args:
        model: an llm of the catalog (plait.sdk.models), e.g. "llama-3.1-8b".
        prompt: text (usually from plait.prompt), or a constant str.
        max_tokens: the generation cap, tokens.
        prompt_tokens: expected prompt size, tokens; estimated from the prompt when None.
        output_tokens: expected generated tokens; `max_tokens` when None.
        temperature: sampling temperature, >= 0; 0 (the default) decodes greedily.
        top_p: nucleus sampling, in (0, 1]: sample from the smallest set of tokens holding this much
            probability; 1 (the default) keeps all.
        stop: strings that end the generation when produced (not included in the answer).
        seed: the sampler's seed, for a reproducible sample; None (the default) draws one per request.
        json_schema: a JSON Schema (dict): the answer is JSON generated under grammar-constrained
            decoding, so a finished answer always parses and validates; max_tokens running out inside
            the JSON is an error (StructuredOutputTruncated), never a half answer.
    Returns:
        text, or json when json_schema is given.

    The sampling arguments travel to the engine: `plait ir --stage agent` shows them on agent.llm_call as
    `sampling = #agent.sampling<{temperature = 0.7, top_p = 0.9, seed = 7}>`, and `--stage program` on the
    llm-engine's op.decode.
    """
    tracer = require("plait.llm")
    check_model(model, "llm", "plait.llm", here(tracer.agents[-1] if tracer.agents else ""))
    cap = _count(tracer, "plait.llm", "max_tokens", max_tokens)
    text = _prompt_value(tracer, prompt)
    p_tokens = planning_figure(tracer, "plait.llm", "prompt_tokens",
                       round(tracer.tokens(text)) if prompt_tokens is None else prompt_tokens)
    o_tokens = planning_figure(tracer, "plait.llm", "output_tokens", cap if output_tokens is None else output_tokens)
    _fits_context(tracer, model, cap, p_tokens)
    if o_tokens.mean > cap:
        tracer.fail(f"plait.llm's output_tokens ({o_tokens}) exceeds max_tokens ({cap})",
                    "To fix: raise max_tokens, or lower the expected output_tokens.")
    attrs: dict[str, AttrValue] = {"max_tokens": cap, "prompt_tokens": p_tokens, "output_tokens": o_tokens,
                                   **_sampling(tracer, temperature, top_p, stop, seed)}
    if json_schema is not None:
        attrs["json_schema"] = _json_schema(tracer, json_schema)
    return tracer.scope.add("llm", [text], "text" if json_schema is None else "json", target=model, attrs=attrs)


def embed(text: object, model: str = "minilm-l6") -> Sym:
    """Embed text with an encoder: a vec step (width `dim` from the catalog)."""
    tracer = require("plait.embed")
    check_model(model, "encoder", "plait.embed", here(tracer.agents[-1] if tracer.agents else ""))
    value = tracer.value(text, "plait.embed", "text", "text")
    attrs: dict[str, AttrValue] = {"input_tokens": Dist.const(round(tracer.tokens(value))),
                                   "dim": EMBED_DIMS[model]}
    return tracer.scope.add("embed", [value], "vec", target=model, attrs=attrs)


def retrieve(index: str, query: object, k: int = 8, doc_tokens: Figure = 256,
             index_docs: int = 1_000_000) -> Sym:
    """Fetch the `k` nearest documents to `query` (a vec) from vector index `index`: a docs step.

    Args:
        index: the index's name.
        query: vec, from plait.embed.
        k: documents returned.
        doc_tokens: expected size of one document, tokens.
        index_docs: documents in the index (sizes the search).
    """
    tracer = require("plait.retrieve")
    if not isinstance(index, str) or not index:
        tracer.fail(f"plait.retrieve's index must be a non-empty str, got {index!r:.40}",
                    'To fix: name the vector index: plait.retrieve(index="wiki", ...).')
    vec = tracer.value(query, "plait.retrieve", "query", "vec")
    dim = vec.node.attrs.get("dim", 0)
    attrs: dict[str, AttrValue] = {
        "k": _count(tracer, "plait.retrieve", "k", k),
        "doc_tokens": planning_figure(tracer, "plait.retrieve", "doc_tokens", doc_tokens),
        "index_docs": _count(tracer, "plait.retrieve", "index_docs", index_docs),
        "dim": dim if isinstance(dim, int) else 0}
    return tracer.scope.add("retrieve", [vec], "docs", target=index, attrs=attrs)


def stt(audio: object, model: str = "whisper-small", audio_seconds: Figure = 5.0) -> Sym:
    """Transcribe speech: a text step. `audio_seconds` is the expected clip length, seconds."""
    tracer = require("plait.stt")
    check_model(model, "stt", "plait.stt", here(tracer.agents[-1] if tracer.agents else ""))
    value = tracer.value(audio, "plait.stt", "audio", "audio")
    seconds = planning_figure(tracer, "plait.stt", "audio_seconds", audio_seconds)
    attrs: dict[str, AttrValue] = {"audio_seconds": seconds,
                                   "output_tokens": seconds.scaled(SPOKEN_TOKENS_PER_S)}
    return tracer.scope.add("stt", [value], "text", target=model, attrs=attrs)


SPOKEN_TOKENS_PER_S = 3.0
"""Tokens of transcript (or of text to speak) per second of speech."""


def tts(text: object, model: str = "parler-tts-mini") -> Sym:
    """Speak text: an audio step; its text size and audio length are estimated from the text."""
    tracer = require("plait.tts")
    check_model(model, "tts", "plait.tts", here(tracer.agents[-1] if tracer.agents else ""))
    value = tracer.value(text, "plait.tts", "text", "text")
    size = round(tracer.tokens(value))
    attrs: dict[str, AttrValue] = {"text_tokens": Dist.const(size),
                                   "audio_seconds": Dist.const(round(size / SPOKEN_TOKENS_PER_S, 1))}
    return tracer.scope.add("tts", [value], "audio", target=model, attrs=attrs)


def gather(*values: object) -> Sym:
    """Fan in: collect several values into one list (texts when all are text, else json)."""
    tracer = require("plait.gather")
    if not values:
        tracer.fail("plait.gather needs at least one value", "To fix: plait.gather(a, b, ...).")
    syms = [tracer.value(v, "plait.gather", f"value {i}", "json") for i, v in enumerate(values)]
    result: ValueType = "texts" if all(s.type == "text" for s in syms) else "json"
    return tracer.scope.add("gather", syms, result)
