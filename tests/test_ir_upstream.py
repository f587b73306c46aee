"""Upstream MLIR (torch-mlir's bindings) parses and verifies plait's generic IR; the IRDL stays in step."""

from __future__ import annotations

import re

import pytest
from test_ir_dialects import agent_module, docs_read_as_text, op_module
from xdsl.dialects.irdl import AttributesOp, DialectOp, OperandsOp, OperationOp, ResultsOp
from xdsl.irdl import IRDLOperation
from xdsl.parser import Parser

from plait.ir import UpstreamMLIRError, print_module
from plait.ir.dialects.agent import Agent
from plait.ir.dialects.op import Op
from plait.ir.dialects.xfer import Xfer
from plait.ir.upstream import IRDL_FILES, available, check_module, check_text, irdl_text

needs_mlir = pytest.mark.skipif(not available(), reason="upstream MLIR bindings (torch-mlir) not installed")


@needs_mlir
@pytest.mark.parametrize("build", [agent_module, op_module])
def test_upstream_parses_and_verifies_every_op(build) -> None:  # type: ignore[no-untyped-def]
    module = build()
    upstream = check_module(module)
    for op_name in {op.name for op in module.walk()}:
        assert f'"{op_name}"' in upstream
    assert 'loc("rag.py":14:0)' in upstream or 'loc("rag.py":10:0)' in upstream


@needs_mlir
def test_upstream_rejects_decode_fed_text_instead_of_kv() -> None:
    text = print_module(op_module(), generic=True)
    kv_line = next(line for line in text.splitlines() if '"op.decode"(%' in line and 'llama-8b' in line)
    source = re.search(r'"op.decode"\((%\d+)\)', kv_line)
    assert source is not None
    bad = text.replace(kv_line, kv_line.replace(source.group(1), "%1").replace(
        ': (!agent.kv<"llama-8b">)', ": (!agent.text)"))
    with pytest.raises(UpstreamMLIRError, match=r"rag.py\":14:0: expected base type 'agent.kv' but got "
                                                 r"'!agent.text'"):
        check_text(bad)


@needs_mlir
def test_upstream_rejects_a_branch_arm_reading_docs_as_text() -> None:
    """Regions keep types: the arm's LLM call reads the retrieved docs themselves, and upstream sees it."""
    with pytest.raises(UpstreamMLIRError, match=r"rag.py\":41:0: expected base type 'agent.text' but got "
                                                 r"'agent.docs'"):
        check_module(docs_read_as_text())


@needs_mlir
def test_upstream_rejects_minilm_tokens_in_a_llama_prefill() -> None:
    """One IRDL constraint value binds the prefill's `model` and its tokens' model, so they must agree."""
    text = print_module(op_module(), generic=True)
    line = next(x for x in text.splitlines() if '"op.prefill"(%' in x and "llama-8b" in x)
    bad = text.replace(line, line.replace('(!agent.tokens<"llama-8b">)', '(!agent.tokens<"minilm">)'))
    source = re.search(r'"op.prefill"\((%\d+)\)', line)
    minilm = re.search(r'(%\d+) = "op.tokenize".*"minilm"', text)
    assert source is not None and minilm is not None and bad != text
    bad = bad.replace(f'"op.prefill"({source.group(1)})', f'"op.prefill"({minilm.group(1)})')
    with pytest.raises(UpstreamMLIRError, match=r"rag.py\":14:0: expected '\"llama-8b\"' but got '\"minilm\"'"):
        check_text(bad)


@needs_mlir
def test_upstream_rejects_an_unregistered_op() -> None:
    text = print_module(op_module(), generic=True).replace('"op.vocode"', '"op.vocoder"')
    with pytest.raises(UpstreamMLIRError, match="unregistered operation 'op.vocoder'"):
        check_text(text)


@needs_mlir
def test_upstream_variadic_operands_must_share_one_type() -> None:
    """Known IRDL limit: a constraint value binds one type, so a variadic slot's values must all agree."""
    text = print_module(agent_module(), generic=True)
    mixed = text.replace('"agent.prompt"(%3) {template = "Context: {}"} : (!agent.docs)',
                         '"agent.prompt"(%3, %1) {template = "Context: {} {}"} : (!agent.docs, !agent.text)')
    assert mixed != text
    with pytest.raises(UpstreamMLIRError, match="expected '!agent.docs' but got '!agent.text'"):
        check_text(mixed)


def _irdl_names() -> dict[str, tuple[list[str], list[str], set[str]]]:
    """op name -> (operand names, result names, attribute names), read from the IRDL files with xDSL."""
    from xdsl.context import Context
    from xdsl.dialects.builtin import Builtin
    from xdsl.dialects.irdl import IRDL

    ctx = Context()
    ctx.load_dialect(Builtin)
    ctx.load_dialect(IRDL)
    found: dict[str, tuple[list[str], list[str], set[str]]] = {}
    for name in IRDL_FILES:
        module = Parser(ctx, irdl_text(name)).parse_module()
        for op in module.walk():
            if not isinstance(op, OperationOp):
                continue
            dialect = op.parent_op()
            assert isinstance(dialect, DialectOp)
            full = f"{dialect.sym_name.data}.{op.sym_name.data}"
            operands: list[str] = []
            results: list[str] = []
            attrs: set[str] = set()
            for inner in op.walk():
                if isinstance(inner, OperandsOp):
                    operands = [n.data for n in inner.names.data]
                elif isinstance(inner, ResultsOp):
                    results = [n.data for n in inner.names.data]
                elif isinstance(inner, AttributesOp):
                    attrs = {n.data for n in inner.attribute_value_names.data}
            found[full] = (operands, results, attrs)
    return found


def _xdsl_names(op: type[IRDLOperation]) -> tuple[list[str], list[str], set[str]]:
    op_def = op.get_irdl_definition()
    # operandSegmentSizes is MLIR's own bookkeeping for several variadic slots, not an IRDL attribute
    attributes = set(op_def.attributes) - {"operandSegmentSizes"}
    return [n for n, _ in op_def.operands], [n for n, _ in op_def.results], attributes


def test_irdl_matches_the_xdsl_dialects() -> None:
    irdl = _irdl_names()
    ops = [op for dialect in (Agent, Op, Xfer) for op in dialect.operations]
    assert sorted(irdl) == sorted(op.name for op in ops)
    for op in ops:
        assert irdl[op.name] == _xdsl_names(op), op.name
