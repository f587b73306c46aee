"""Structured output: a JSON schema as a token constraint the engine applies while it decodes (llguidance).

The engine (plait.codegen.engine) only knows the TokenConstraint hook; this module compiles the schema to
a grammar with llguidance (chosen over xgrammar: it installs alone, while xgrammar 0.2.8 pulls triton and
transformers), builds the grammar's token table from the engine's tokenizer, and turns a finished
generation back into JSON, or a named error when max_tokens cut it inside the grammar.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import torch

from plait.codegen.engine.config import ModelConfig
from plait.codegen.engine.engine import RequestOutput
from plait.codegen.engine.tokenizer import ByteTokenizer, HFTokenizer, TextTokenizer
from plait.codegen.errors import CodegenError, StructuredOutputTruncated

# Compact JSON: a grammar that allows free whitespace lets a model (and any random-weight model) spend its
# whole max_tokens on blanks between the braces.
JSON_OPTIONS = {"whitespace_flexible": False}


def _llguidance() -> Any:
    try:
        import llguidance
    except ImportError as e:  # pragma: no cover - a declared dependency; only a broken install lands here
        raise CodegenError("structured output (json_schema=) needs the llguidance package. "
                           "To fix: pip install llguidance") from e
    return llguidance


def schema_error(schema: dict[str, Any] | str) -> str | None:
    """Why llguidance cannot compile `schema` into a grammar (None: it can)."""
    ll = _llguidance()
    grammar = ll.LLMatcher.grammar_from_json_schema(schema, overrides=JSON_OPTIONS)
    is_error, messages = ll.LLMatcher.validate_grammar_with_warnings(grammar)
    return messages[0] if is_error else None


class _ByteVocabulary:
    """llguidance's view of the engine's byte tokenizer: ids 0-255 are bytes, then the model's EOS."""

    bos_token_id = None

    def __init__(self, eos: int) -> None:
        self.eos_token_id = eos
        self.tokens = [bytes([i]) for i in range(256)] + [b"<|eos|>"] * (eos - 255)
        self.special_token_ids = list(range(256, eos + 1))

    def __call__(self, text: bytes | str) -> list[int]:
        return list(text if isinstance(text, bytes) else text.encode("utf-8"))


@cache
def _byte_tokenizer(eos: int) -> Any:
    ll = _llguidance()
    return ll.LLTokenizer(ll.TokenizerWrapper(_ByteVocabulary(eos)), n_vocab=eos + 1)


@cache
def _hf_tokenizer(path: str, eos: int) -> Any:
    return _llguidance().LLTokenizer(path, eos_token=eos)


def grammar_tokenizer(tokenizer: TextTokenizer, config: ModelConfig) -> Any:
    """The llguidance tokenizer for an engine's tokenizer; the grammar ends with the model's first EOS."""
    if not config.eos_token_ids:
        raise CodegenError(f"model {config.name or config.arch!r} names no EOS token, so a JSON answer cannot end. "
                           "To fix: give the checkpoint's config.json an eos_token_id")
    eos = config.eos_token_ids[0]
    if isinstance(tokenizer, ByteTokenizer):
        if eos < 256:
            raise CodegenError(f"model {config.name!r}'s EOS id {eos} is a byte of the byte-level tokenizer. "
                               "To fix: give the model an EOS id of 256 or more")
        return _byte_tokenizer(eos)
    if isinstance(tokenizer, HFTokenizer):
        return _hf_tokenizer(str(tokenizer.path), eos)
    raise CodegenError(f"structured output has no grammar tokenizer for {type(tokenizer).__name__}. "
                       "To fix: use a tokenizer.json checkpoint or the byte-level tokenizer")


class JsonSchemaConstraint:
    """The engine's TokenConstraint for one request: llguidance's matcher for one JSON schema."""

    def __init__(self, schema: dict[str, Any] | str, tokenizer: TextTokenizer, config: ModelConfig) -> None:
        ll = _llguidance()
        if (error := schema_error(schema)) is not None:
            raise CodegenError(f"json_schema cannot be compiled into a grammar: {error}. "
                               "To fix: use the JSON Schema subset llguidance supports (docs/engine.md)")
        self.tokenizer = grammar_tokenizer(tokenizer, config)
        grammar = ll.LLMatcher.grammar_from_json_schema(schema, overrides=JSON_OPTIONS)
        self.matcher = ll.LLMatcher(self.tokenizer, grammar, log_level=0)

    def allowed(self, vocab_size: int) -> torch.Tensor:
        bias = torch.frombuffer(bytearray(self.matcher.compute_logit_bias()), dtype=torch.uint8) != 0
        mask = torch.zeros(vocab_size, dtype=torch.bool)
        n = min(vocab_size, bias.numel())  # ids past the grammar's table (a padded vocabulary) never come next
        mask[:n] = bias[:n]
        return mask

    def accept(self, token_id: int) -> None:
        if not self.matcher.consume_token(token_id):
            raise RuntimeError(f"the JSON grammar refused token {token_id}: {self.matcher.get_error()}")

    def is_finished(self) -> bool:
        return bool(self.matcher.is_stopped())


def json_output(output: RequestOutput, tokenizer: TextTokenizer, *, call: str, max_tokens: int) -> Any:
    """The JSON value of a finished schema-constrained generation.

    Raises StructuredOutputTruncated when max_tokens ended it before the grammar was complete."""
    if output.finish_reason != "stop":
        raise StructuredOutputTruncated(
            f"LLM call {call!r} reached max_tokens={max_tokens} before its JSON was complete "
            f"({len(output.token_ids)} tokens generated). To fix: raise max_tokens in plait.llm(...), "
            "or bound the schema (maxLength, maxItems, enum)")
    text = tokenizer.decode(output.token_ids)
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:  # the grammar makes this unreachable; say so loudly if it is not
        raise CodegenError(f"LLM call {call!r}: the constrained output is not JSON ({e}): {text[:200]!r}") from e
