"""Prefix reuse: record on each op.prefill how many leading prompt tokens an earlier prefill computed already.

Serving engines keep the KV cache of prompt prefixes they have seen (vLLM's prefix caching, SGLang's
RadixAttention); plait sees the prompts ahead of time. Within one request, a prefill of model M shares
its prompt's first tokens with
- an earlier prefill of M whose template starts with the same literal text (the common start of the two
  templates, up to the first field), and
- its own earlier executions when it repeats (a loop's iterations, a map's elements, a function called
  from one): the template's literal start, and, in a loop whose prompt starts with the carried value
  (a ReAct transcript that grows by appending), the whole carried value. Of R executions per visit the
  first computes it all, so the expected share is (R - 1) / R of it.
The shared length (tokens: 4 characters per token, as the SDK estimates) goes on the prefill as
`prefix_tokens` (f64, the expected tokens read from the cache per execution, < prompt_tokens); the cost
model then charges only the other tokens plus reading the cached ones. Planned, not measured.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import scf
from xdsl.dialects.builtin import FloatAttr, ModuleOp
from xdsl.dialects.func import CallOp, FuncOp
from xdsl.ir import BlockArgument, Operation, SSAValue
from xdsl.passes import ModulePass

from plait.ir.dialects.agent import DistAttr
from plait.ir.dialects.control import ITERS, LENGTH
from plait.ir.dialects.op import FormatOp, PrefillOp, TokenizeOp
from plait.sdk.estimate import CHARS_PER_TOKEN

PREFIX_TOKENS = "prefix_tokens"
"""The attribute this pass sets on op.prefill."""
MIN_TOKENS = 1.0
"""Shares below one token (a two-character template start) are not worth recording."""


@dataclass(frozen=True)
class Head:
    """What a prompt starts with: its template's literal text, and whether a loop's carried value follows it."""

    literal: str
    carried: bool


def prompt_head(prefill: PrefillOp) -> Head | None:
    """The start of `prefill`'s prompt, when the prompt is tokenized text (None for speech decoders)."""
    if prefill.prompt is None or not isinstance(tokenize := prefill.prompt.owner, TokenizeOp):
        return None
    text = tokenize.text
    if not isinstance(fmt := text.owner, FormatOp):
        return Head("", _is_carried(text))
    literal, field, _, _ = next(iter(string.Formatter().parse(fmt.template.data)), ("", None, None, None))
    first = fmt.args[int(field)] if not literal and field is not None and field.isdigit() else None
    return Head(literal, first is not None and _is_carried(first))


def _is_carried(value: SSAValue) -> bool:
    """Whether `value` is the carried value of an scf.while body (a loop's state at this iteration)."""
    return isinstance(value, BlockArgument) and isinstance(value.block.parent_op(), scf.WhileOp)


def _common(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def repeats(op: Operation, callers: dict[str, list[CallOp]]) -> float:
    """Expected executions of `op` per visit of its outermost repeating region (1 if it does not repeat).

    Walks out through scf.while (agent.iters) and scf.for (agent.len) and, from a function called at one
    site, on from that call.
    """
    count, current = 1.0, op.parent_op()
    while current is not None:
        if isinstance(current, scf.WhileOp | scf.ForOp) and isinstance(d := current.attributes.get(
                ITERS if isinstance(current, scf.WhileOp) else LENGTH), DistAttr):
            count *= max(d.values[0], 1.0)
        if isinstance(current, FuncOp):
            sites = callers.get(current.sym_name.data, [])
            current = sites[0] if len(sites) == 1 else None
            continue
        current = current.parent_op()
    return count


def shared_tokens(prefill: PrefillOp, head: Head, earlier: list[str], runs: float) -> float:
    """Expected tokens of `prefill`'s prompt already in the cache (see the module docstring)."""
    prompt = prefill.prompt_tokens.values[0]
    literal = len(head.literal) / CHARS_PER_TOKEN
    across = max((_common(head.literal, other) for other in earlier), default=0) / CHARS_PER_TOKEN
    own = max(prompt - _template_tokens(prefill), literal) if head.carried else literal
    again = own * (runs - 1) / runs
    return min(max(across, again), prompt - 1)


def _template_tokens(prefill: PrefillOp) -> float:
    """Tokens of literal text in the template of `prefill`'s prompt (0 when there is no op.format)."""
    assert prefill.prompt is not None and isinstance(tokenize := prefill.prompt.owner, TokenizeOp)
    if not isinstance(fmt := tokenize.text.owner, FormatOp):
        return 0.0
    return sum(len(lit) for lit, *_ in string.Formatter().parse(fmt.template.data)) / CHARS_PER_TOKEN


@dataclass(frozen=True)
class PrefixReusePass(ModulePass):
    """Set `prefix_tokens` on every op.prefill whose prompt starts as an earlier one of its model did."""

    name = "prefix-reuse"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        callers: dict[str, list[CallOp]] = {}
        for call in op.walk():
            if isinstance(call, CallOp):
                callers.setdefault(call.callee.root_reference.data, []).append(call)
        seen: dict[str, list[str]] = {}
        for prefill in op.walk():
            if not isinstance(prefill, PrefillOp) or (head := prompt_head(prefill)) is None:
                continue
            earlier = seen.setdefault(prefill.model.data, [])
            tokens = shared_tokens(prefill, head, earlier, repeats(prefill, callers))
            if tokens >= MIN_TOKENS:
                prefill.attributes[PREFIX_TOKENS] = FloatAttr(round(tokens, 2), 64)
            earlier.append(head.literal)
