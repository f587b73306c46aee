"""Lower `agent` steps to per-device `op` operators (one pattern per agent op; control flow stays).

Each new op keeps the location (the user's file:line) of the step it came from. Control flow (scf regions,
func.call) stays, and the agent ops inside its regions are lowered like any other; agent.gather,
agent.box, agent.select_arm and the list ops of maps are plumbing that no device runs, and stay too.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    GreedyRewritePatternApplier,
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)

from plait.ir.dialects import agent as A
from plait.ir.dialects import op as O
from plait.ir.dialects._base import num
from plait.ir.dialects.agent import dist

STT_PROMPT_TOKENS = 4.0
"""Tokens a whisper-style speech decoder starts from (<|startoftranscript|><|en|><|transcribe|><|notimestamps|>)."""


def _f(op: Operation, name: str) -> float:
    """The mean of `op`'s #agent.dist attribute `name` (`prompt_tokens_p95`: its p95)."""
    base, p95 = (name[:-4], True) if name.endswith("_p95") else (name, False)
    return dist(op, base)[1 if p95 else 0]


HINTS = {"op.tokenize": "tokens", "op.prefill": "kv", "op.decode": "gen", "op.encode": "enc"}
"""Name-hint suffixes of a step's intermediate values (`%llm_kv`); the last value keeps the step's name."""


def _located(source: Operation, *ops: Operation) -> list[Operation]:
    """`ops` at `source`'s location, their results named after `source`'s (`%llm_tokens`, `%llm_kv`, `%llm`)."""
    base = source.results[0].name_hint if source.results else None
    for i, op in enumerate(ops):
        op.location = source.location
        if base is not None:
            op.results[0].name_hint = base if i == len(ops) - 1 else f"{base}_{HINTS.get(op.name, 'part')}"
    return list(ops)


def _generate(op: A.LLMFiguresBase, prompt: O.TokenizeOp | None, context: O.EncodeOp | None,
              prompt_tokens: float, prompt_tokens_p95: float) -> tuple[O.PrefillOp, O.DecodeOp]:
    """Prefill then decode with `op`'s model and output figures."""
    model = op.model.data
    kv = O.PrefillOp(prompt, context=context, model=model, prompt_tokens=prompt_tokens,
                     prompt_tokens_p95=prompt_tokens_p95)
    sampling = op.sampling if isinstance(op, A.LLMCallOp) else None   # speech models decode greedily
    out = O.DecodeOp(kv, model=model, max_tokens=int(num(op.max_tokens)), output_tokens=_f(op, "output_tokens"),
                     output_tokens_p95=_f(op, "output_tokens_p95"), sampling=sampling)
    return kv, out


def _detokenize(op: A.LLMCallOp | A.STTOp, out: O.DecodeOp) -> O.DetokenizeOp:
    """The text (or, for structured output, the JSON) of a generation: its output token figures carried over
    from the agent-level op."""
    return O.DetokenizeOp(out, model=op.model.data, tokens=_f(op, "output_tokens"),
                          tokens_p95=_f(op, "output_tokens_p95"), json=isinstance(op.result.type, A.JsonType))


class LowerLLMCall(RewritePattern):
    """agent.llm_call -> op.tokenize, op.prefill, op.decode, op.detokenize (text, or JSON under a json_schema)."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: A.LLMCallOp, rewriter: PatternRewriter) -> None:
        p, p95 = _f(op, "prompt_tokens"), _f(op, "prompt_tokens_p95")
        tokens = O.TokenizeOp(op.prompt, model=op.model.data, tokens=p, tokens_p95=p95)
        kv, out = _generate(op, tokens, None, p, p95)
        rewriter.replace(op, _located(op, tokens, kv, out, _detokenize(op, out)))


class LowerSTT(RewritePattern):
    """agent.stt -> op.encode (speech encoder on the audio), op.prefill (context), op.decode, op.detokenize."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: A.STTOp, rewriter: PatternRewriter) -> None:
        frames = O.EncodeOp(op.audio, model=op.model.data, tokens=_f(op, "prompt_tokens"),
                            tokens_p95=_f(op, "prompt_tokens_p95"))
        kv, out = _generate(op, None, frames, STT_PROMPT_TOKENS, STT_PROMPT_TOKENS)
        rewriter.replace(op, _located(op, frames, kv, out, _detokenize(op, out)))


class LowerTTS(RewritePattern):
    """agent.tts -> op.tokenize, op.prefill and op.decode of the TTS decoder (audio codes), op.vocode."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: A.TTSOp, rewriter: PatternRewriter) -> None:
        p, p95 = _f(op, "prompt_tokens"), _f(op, "prompt_tokens_p95")
        tokens = O.TokenizeOp(op.text, model=op.model.data, tokens=p, tokens_p95=p95)
        kv, codes = _generate(op, tokens, None, p, p95)
        audio = O.VocodeOp(codes, model=op.vocoder.data, tokens=_f(op, "output_tokens"),
                           tokens_p95=_f(op, "output_tokens_p95"))
        rewriter.replace(op, _located(op, tokens, kv, codes, audio))


class LowerEmbed(RewritePattern):
    """agent.embed -> op.tokenize, op.encode."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: A.EmbedOp, rewriter: PatternRewriter) -> None:
        t, t95 = _f(op, "input_tokens"), _f(op, "input_tokens_p95")
        tokens = O.TokenizeOp(op.text, model=op.model.data, tokens=t, tokens_p95=t95)
        vec = O.EncodeOp(tokens, model=op.model.data, tokens=t, tokens_p95=t95)
        rewriter.replace(op, _located(op, tokens, vec))


class LowerRetrieve(RewritePattern):
    """agent.retrieve -> op.ann_search."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: A.RetrieveOp, rewriter: PatternRewriter) -> None:
        search = O.AnnSearchOp(op.query, index=op.index.data, k=int(num(op.k)), doc_tokens=int(num(op.doc_tokens)),
                               index_docs=int(num(op.index_docs)), dim=int(num(op.dim)))
        rewriter.replace(op, _located(op, search))


class LowerToolCall(RewritePattern):
    """agent.tool_call -> op.py_call."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: A.ToolCallOp, rewriter: PatternRewriter) -> None:
        call = O.PyCallOp(op.tool.data, list(op.args), op.result.type, latency_ms=_f(op, "latency_ms"),
                          latency_ms_p95=_f(op, "latency_ms_p95"), cpu=float(num(op.cpu)))
        call.attributes.update({k: op.attributes[k] for k in A.TOOL_ARGUMENT_ATTRS if k in op.attributes})
        rewriter.replace(op, _located(op, call))


class LowerPrompt(RewritePattern):
    """agent.prompt -> op.format."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: A.PromptOp, rewriter: PatternRewriter) -> None:
        rewriter.replace(op, _located(op, O.FormatOp(op.template.data, list(op.args))))


PATTERNS: tuple[type[RewritePattern], ...] = (LowerLLMCall, LowerSTT, LowerTTS, LowerEmbed, LowerRetrieve,
                                              LowerToolCall, LowerPrompt)


@dataclass(frozen=True)
class LowerAgentToOpPass(ModulePass):
    """Rewrite every agent step of every function (agents and bodies) into op-dialect operators."""

    name = "lower-agent-to-op"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        patterns = GreedyRewritePatternApplier([pattern() for pattern in PATTERNS], dce_enabled=False)
        PatternRewriteWalker(patterns, apply_recursively=False).rewrite_module(op)
