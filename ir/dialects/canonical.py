"""Canonicalization patterns of the agent and op dialects (run by `canonicalize`, found through op traits)."""

from __future__ import annotations

from xdsl.ir import Operation
from xdsl.pattern_rewriter import PatternRewriter, RewritePattern, op_type_rewrite_pattern

from plait.ir.dialects.agent import PromptOp, TemplateOpBase, TextType
from plait.ir.dialects.op import DetokenizeOp, FormatOp, TokenizeOp

IDENTITY_TEMPLATES = ("{}", "{0}")


class IdentityTemplate(RewritePattern):
    """`agent.prompt` / `op.format` of the template `{0}` over one text value -> that value."""

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter, /) -> None:
        if not isinstance(op, PromptOp | FormatOp):
            return
        template: TemplateOpBase = op
        if template.template.data not in IDENTITY_TEMPLATES or len(template.args) != 1:
            return
        if not isinstance((value := template.args[0]).type, TextType):
            return
        rewriter.replace(op, [], [value])


class RetokenizeDetokenized(RewritePattern):
    """`op.tokenize(op.detokenize(t))` for the same model -> `t` (an answer fed straight back as a prompt)."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: TokenizeOp, rewriter: PatternRewriter) -> None:
        if not isinstance(detok := op.text.owner, DetokenizeOp) or detok.model != op.model:
            return
        rewriter.replace(op, [], [detok.tokens_in])
