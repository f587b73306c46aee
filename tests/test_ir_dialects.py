"""The agent, op and xfer dialects: a module with every op verifies and round-trips; each verifier's rules."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest
from xdsl.dialects import scf
from xdsl.dialects.builtin import ArrayAttr, FunctionType, ModuleOp, StringAttr, SymbolRefAttr, i1
from xdsl.dialects.func import CallOp, FuncOp, ReturnOp
from xdsl.ir import Attribute, Block, Operation, Region, SSAValue
from xdsl.utils.exceptions import VerifyException

from plait.ir import IRVerifyError, parse_module, print_module, set_loc, user_loc, verify_module
from plait.ir.dialects import agent as A
from plait.ir.dialects import control as C
from plait.ir.dialects import op as O
from plait.ir.dialects import xfer as X
from plait.ir.dialects._base import f64
from plait.ir.dialects._base import i64 as int64

TEXT, TEXTS, JSON, VEC, DOCS, AUDIO = (A.TextType(), A.TextsType(), A.JsonType(), A.VecType(), A.DocsType(),
                                       A.AudioType())


def func(name: str, inputs: Sequence[Attribute], body: Callable[[Block], Sequence[SSAValue]],
         private: bool = False) -> FuncOp:
    """A func.func whose block `body` fills; `body` returns the values to return."""
    block = Block(arg_types=inputs)
    results = body(block)
    block.add_op(ReturnOp(*results))
    ftype = FunctionType.from_lists(list(inputs), [r.type for r in results])
    return FuncOp(name, ftype, Region(block), visibility="private" if private else None)


def add(block: Block, op: Operation, line: int | None = None) -> SSAValue:
    block.add_op(set_loc(op, "rag.py", line) if line else op)
    return op.results[0] if op.results else SSAValue.get(op)  # type: ignore[arg-type]


def llm(prompt: SSAValue, **kw: object) -> A.LLMCallOp:
    figures = {"model": "llama-8b", "max_tokens": 256, "prompt_tokens": 900.0, "prompt_tokens_p95": 1400.0,
               "output_tokens": 120.0, "output_tokens_p95": 240.0} | kw
    return A.LLMCallOp(prompt, **figures)  # type: ignore[arg-type]


def agent_module() -> ModuleOp:
    """Every agent op: a RAG agent with a refine loop, a branch, a map, a sub-agent and speech in/out.

    Control flow is scf with agent ops in its regions, reading outer values with their own types.
    """

    def loop(b: Block, question: SSAValue, draft: SSAValue) -> SSAValue:
        body = Block(arg_types=[TEXT])
        p = add(body, A.PromptOp("Improve {draft} for {question}", [body.args[0], question]), 30)
        better = add(body, llm(p), 31)
        done = add(body, A.ToolCallOp("good_enough", [better], i1, latency_ms=2.0), 32)
        return add(b, C.loop([draft], body, done, [better], max_iters=3, expected_iters=1.5), 15)

    def arm(style: str, answer: SSAValue) -> Block:
        body = Block()
        p = add(body, A.PromptOp(style + " {}", [answer]), 40)
        body.add_op(scf.YieldOp(add(body, llm(p), 41)))
        return body

    def map_(b: Block, parts: SSAValue, limit: SSAValue) -> SSAValue:
        (*before, for_op), body, item = C.map_items(parts, TEXTS, expected_len=2.0)
        for op in before:
            add(b, op, 20)
        p = add(body, A.PromptOp("Summarize {} in {} words", [item, limit]), 50)
        C.end_map(body, add(body, llm(p, max_tokens=64, output_tokens=40.0, output_tokens_p95=60.0), 51))
        return add(b, for_op, 20)

    def sub(b: Block) -> list[SSAValue]:
        return [add(b, A.ToolCallOp("lookup_weather", [b.args[0]], JSON, latency_ms=80.0, cpu=0.5), 60)]

    def main(b: Block) -> list[SSAValue]:
        (audio,) = b.args
        question = add(b, A.STTOp(audio, model="whisper-small", max_tokens=128, prompt_tokens=1500.0,
                                  output_tokens=30.0, output_tokens_p95=60.0), 10)
        vec = add(b, A.EmbedOp(question, model="minilm", input_tokens=30.0, input_tokens_p95=60.0), 11)
        docs = add(b, A.RetrieveOp(vec, index="wiki", k=4, doc_tokens=200), 12)
        context = add(b, A.PromptOp("Context: {}", [docs]), 13)
        prompt = add(b, A.PromptOp("Answer {question} from {context}", [question, context]), 13)
        draft = add(b, llm(prompt), 14)
        answer = loop(b, question, draft)
        style = add(b, A.ToolCallOp("pick_style", [answer], TEXT, latency_ms=1.0), 16)
        selector = add(b, A.SelectArmOp(style, ["formal", "casual"]), 16)
        styled = add(b, C.branch(selector, [arm("Formally:", answer), arm("Casually:", answer)], [TEXT],
                                 probabilities=[0.25, 0.75]), 17)
        parts = add(b, A.GatherOp([answer, styled]), 18)
        limit = add(b, A.ToolCallOp("word_limit", [], TEXT, latency_ms=0.1), 19)
        summaries = map_(b, parts, limit)
        weather = add(b, CallOp("weather", [question], [JSON]), 21)
        report = add(b, A.GatherOp([weather]), 22)
        boxed = add(b, A.BoxOp(docs), 22)
        final = add(b, A.PromptOp("{}", [add(b, A.PromptOp("{} {}", [add(b, A.PromptOp("{}", [summaries]), 22),
                                                                     add(b, A.PromptOp("{}", [report]), 22)]), 22)]), 23)
        speech = add(b, A.TTSOp(final, model="orpheus-3b", vocoder="snac-24khz", max_tokens=2048,
                                prompt_tokens=80.0, output_tokens=700.0, output_tokens_p95=1200.0), 24)
        add(b, A.GatherOp([boxed, report]), 25)
        return [speech]

    return ModuleOp([func("assistant", [AUDIO], main), func("weather", [TEXT], sub, private=True)])


def op_module() -> ModuleOp:
    """Every op and xfer op: an LLM call, embedding + search, a tool, speech in and out, one transfer."""

    def main(b: Block) -> list[SSAValue]:
        audio, question = b.args
        frames = add(b, O.EncodeOp(audio, model="whisper-small", tokens=1500.0), 10)
        kv0 = add(b, O.PrefillOp(None, context=frames, model="whisper-small", prompt_tokens=4.0), 10)
        heard = add(b, O.DecodeOp(kv0, max_tokens=128, output_tokens=30.0, output_tokens_p95=60.0), 10)
        text = add(b, O.DetokenizeOp(heard, model="whisper-small", tokens=30.0), 10)
        toks = add(b, O.TokenizeOp(question, model="minilm", tokens=30.0, tokens_p95=60.0), 11)
        vec = add(b, O.EncodeOp(toks, model="minilm", tokens=30.0, tokens_p95=60.0), 11)
        handle = add(b, X.SendOp(vec, src="gpu-l4", dst="cpu", nbytes=1536), 12)
        vec_cpu = add(b, X.RecvOp(handle), 12)
        docs = add(b, O.AnnSearchOp(vec_cpu, index="wiki", k=4, doc_tokens=200), 12)
        context = add(b, O.FormatOp("Context: {}", [docs]), 13)
        prompt = add(b, O.FormatOp("Answer {} from {}", [text, context]), 13)
        ptoks = add(b, O.TokenizeOp(prompt, model="llama-8b", tokens=900.0, tokens_p95=1400.0), 14)
        kv = add(b, O.PrefillOp(ptoks, model="llama-8b", prompt_tokens=900.0, prompt_tokens_p95=1400.0), 14)
        out = add(b, O.DecodeOp(kv, max_tokens=256, output_tokens=120.0, output_tokens_p95=240.0), 14)
        answer = add(b, O.DetokenizeOp(out, model="llama-8b", tokens=120.0, tokens_p95=240.0), 14)
        checked = add(b, O.PyCallOp("redact", [answer], TEXT, latency_ms=3.0, cpu=0.5), 15)
        ttoks = add(b, O.TokenizeOp(checked, model="orpheus-3b", tokens=80.0), 16)
        tkv = add(b, O.PrefillOp(ttoks, model="orpheus-3b", prompt_tokens=80.0), 16)
        codes = add(b, O.DecodeOp(tkv, max_tokens=2048, output_tokens=700.0, output_tokens_p95=1200.0), 16)
        return [add(b, O.VocodeOp(codes, model="snac-24khz", tokens=700.0, tokens_p95=1200.0), 16)]

    return ModuleOp([func("assistant", [AUDIO, TEXT], main)])


@pytest.mark.parametrize("build", [agent_module, op_module])
def test_module_with_every_op_verifies_and_round_trips(build: Callable[[], ModuleOp]) -> None:
    module = build()
    verify_module(module)
    for generic in (False, True):
        text = print_module(module, generic=generic)
        again = parse_module(text)
        verify_module(again)
        assert print_module(again, generic=generic) == text


def _first(module: ModuleOp, name: str) -> Operation:
    return next(op for op in module.walk() if op.name == name)


def _set(op: Operation, **attrs: Attribute) -> None:
    op.attributes.update(attrs)


def _bad(build: Callable[[], ModuleOp], name: str, mutate: Callable[[Operation], None], match: str) -> None:
    module = build()
    mutate(_first(module, name))
    with pytest.raises(IRVerifyError, match=match):
        verify_module(module)


def f(x: float) -> Attribute:
    return f64(x)


def n(x: int) -> Attribute:
    return int64(x)


def _retype(op: Operation, t: Attribute) -> None:
    op.results[0]._type = t  # no public setter: build the broken op as a parser might


def d(mean: float, p95: float | None = None) -> Attribute:
    return A.DistAttr(mean, p95)


CASES = [
    # agent dialect
    (agent_module, "agent.llm_call", lambda op: _set(op, output_tokens=d(120.0, 300.0)),
     r"'agent.llm_call' attribute 'output_tokens' has p95 300.0 above 'max_tokens' \(256\); it must be <= 256"
     r"\n  at rag.py:14"),
    (agent_module, "agent.llm_call", lambda op: _set(op, prompt_tokens=d(900.0, 10.0)),
     r"'prompt_tokens' has p95 10.0 below its mean 900.0; the p95 must be >= the mean"),
    (agent_module, "agent.stt", lambda op: _set(op, max_tokens=n(0)), r"'agent.stt' attribute 'max_tokens' must be >= 1, got 0"),
    (agent_module, "agent.tts", lambda op: _set(op, output_tokens=d(-5.0)), r"'output_tokens' has mean -5.0; it must be >= 0"),
    (agent_module, "agent.embed", lambda op: _set(op, input_tokens=d(30.0, 7.0)),
     r"'agent.embed' attribute 'input_tokens' has p95 7.0 below its mean 30.0"),
    (agent_module, "agent.retrieve", lambda op: _set(op, k=n(0)), r"'agent.retrieve' attribute 'k' must be >= 1, got 0"),
    (agent_module, "agent.retrieve", lambda op: _set(op, doc_tokens=n(-3)), r"'doc_tokens' must be >= 0, got -3"),
    (agent_module, "agent.prompt", lambda op: _set(op, template=StringAttr("{a} {b} {c}")),
     r"'agent.prompt' template '\{a\} \{b\} \{c\}' has 3 field\(s\), but the op has 1 operand\(s\) in 'args'"),
    (agent_module, "agent.prompt", lambda op: _set(op, template=StringAttr("{")), r"'template' is not a valid format"),
    (agent_module, "agent.tool_call", lambda op: _set(op, latency_ms=d(-1.0)), r"'latency_ms' has mean -1.0; it must be >= 0"),
    (agent_module, "agent.tool_call", lambda op: _set(op, cpu=f(0.0)), r"'cpu' \(cores\) must be > 0, got 0.0"),
    (agent_module, "agent.select_arm", lambda op: _set(op, arms=ArrayAttr([StringAttr("formal")])),
     r"needs at least 2 arms, got 1"),
    (agent_module, "agent.gather", lambda op: _retype(op, JSON),
     r"'agent.gather' result must be !agent.texts for parts of types \(!agent.text, !agent.text\), got !agent.json"),
    (agent_module, "agent.append", lambda op: op.operands.__setitem__(1, next(
        o for o in op.parent_op().parent_block().ops if isinstance(o, A.GatherOp)).results[0]),  # type: ignore[union-attr]
     r"'agent.append' appends a !agent.texts to !agent.texts; a list of texts takes !agent.text"),
    # control flow: scf ops with agent attributes
    (agent_module, "scf.while", lambda op: _set(op, **{C.ITERS: d(4.5)}),
     r"'scf.while' attribute 'agent.iters' has mean 4.5; it must lie between 1 and agent.max_iters \(3\)\n  at rag.py:15"),
    (agent_module, "scf.while", lambda op: _set(op, **{C.MAX_ITERS: n(0)}), r"'agent.max_iters' must be >= 1, got 0"),
    (agent_module, "scf.while", lambda op: op.attributes.pop(C.ITERS), r"an agent loop needs attribute 'agent.iters'"),
    (agent_module, "scf.index_switch", lambda op: _set(op, **{C.PROBABILITIES: ArrayAttr([f(0.5), f(0.7)])}),
     r"'agent.probabilities' must be in \[0, 1\] and sum to 1, got \[0.5, 0.7\]"),
    (agent_module, "scf.index_switch", lambda op: _set(op, **{C.PROBABILITIES: ArrayAttr([f(1.0)])}),
     r"'agent.probabilities' has 1 entries, but the op has 2 arms"),
    (agent_module, "scf.for", lambda op: _set(op, **{C.LENGTH: d(-2.0)}), r"'agent.len' has mean -2.0; it must be >= 0"),
    (agent_module, "func.call", lambda op: op.properties.__setitem__("callee", SymbolRefAttr("nowhere")),
     r"'func.call' .*nowhere"),
    # op dialect
    (op_module, "op.decode", lambda op: _set(op, model=StringAttr("qwen-7b")),
     r"'op.decode' operand 'kv' is a KV cache of model 'whisper-small', but the op runs 'qwen-7b'\n  at rag.py:10"),
    (op_module, "op.decode", lambda op: _set(op, output_tokens=d(30.0, 999.0)),
     r"'output_tokens' has p95 999.0 above 'max_tokens' \(128\)"),
    (op_module, "op.prefill", lambda op: _set(op, model=StringAttr("llama-70b")),
     r"'op.prefill' result 'kv' is a KV cache of model 'whisper-small', but the op runs 'llama-70b'"),
    (op_module, "op.tokenize", lambda op: _set(op, tokens=d(30.0, 12.0)), r"'op.tokenize' attribute 'tokens' has p95 12.0 below its mean 30.0"),
    (op_module, "op.tokenize", lambda op: _set(op, model=StringAttr("llama-8b")),
     r"'op.tokenize' result holds tokens of model 'minilm', but the op runs 'llama-8b'"),
    (op_module, "op.detokenize", lambda op: _set(op, tokens=d(-1.0)), r"'op.detokenize' attribute 'tokens' has mean -1.0"),
    (op_module, "op.encode", lambda op: _set(op, tokens=d(1500.0, 2.0)), r"'op.encode' attribute 'tokens' has p95 2.0"),
    (op_module, "op.vocode", lambda op: _set(op, tokens=d(1300.0, 1200.0)), r"'op.vocode' attribute 'tokens' has p95 1200.0 below its mean 1300.0"),
    (op_module, "op.ann_search", lambda op: _set(op, k=n(-4)), r"'op.ann_search' attribute 'k' must be >= 1, got -4"),
    (op_module, "op.py_call", lambda op: _set(op, cpu=f(-0.5)), r"'op.py_call' attribute 'cpu' \(cores\) must be > 0, got -0.5"),
    (op_module, "op.format", lambda op: _set(op, template=StringAttr("{} and {}")),
     r"'op.format' template '\{\} and \{\}' has 2 field\(s\), but the op has 1 operand\(s\)"),
    # xfer dialect
    (op_module, "xfer.send", lambda op: _set(op, dst=StringAttr("gpu-l4")), r"'xfer.send' moves a value from pool 'gpu-l4' to itself"),
    (op_module, "xfer.recv", lambda op: _set(op, bytes=n(2048)),
     r"'xfer.recv' attribute 'bytes' is 2048 : i64, but its xfer.send has 1536 : i64\n  at rag.py:12"),
    (op_module, "xfer.recv", lambda op: _set(op, src=StringAttr("gpu-h100")), r"attribute 'src' is \"gpu-h100\", but its xfer.send has \"gpu-l4\""),
]


@pytest.mark.parametrize(("build", "name", "mutate", "match"), CASES, ids=[f"{c[1]}-{i}" for i, c in enumerate(CASES)])
def test_verifier_says_what_is_wrong(build: Callable[[], ModuleOp], name: str,
                                     mutate: Callable[[Operation], None], match: str) -> None:
    _bad(build, name, mutate, match)


def test_wrongly_typed_operand_names_op_operand_and_line() -> None:
    module = op_module()
    decode = next(op for op in module.walk() if isinstance(op, O.DecodeOp) and op.model.data == "llama-8b")
    text = next(op for op in module.walk() if isinstance(op, O.DetokenizeOp)).results[0]
    decode.operands[0] = text
    with pytest.raises(IRVerifyError, match=r"'op.decode' operand 'kv' at position 0 does not verify: .*agent.text"
                                            r".*\n  at rag.py:14 \(op.decode\)"):
        verify_module(module)


def test_irverifyerror_is_both_a_plait_error_and_an_xdsl_verify_exception() -> None:
    from plait.sdk.errors import PlaitError

    module = op_module()
    _set(_first(module, "op.ann_search"), k=n(0))
    with pytest.raises(VerifyException) as info:
        verify_module(module)
    assert isinstance(info.value, PlaitError)


def test_locations_print_and_parse_back() -> None:
    module = agent_module()
    text = print_module(module, generic=True)
    assert 'loc("rag.py":14:0)' in text
    again = parse_module(text)
    llm_calls = [op for op in again.walk() if isinstance(op, A.LLMCallOp)]
    assert user_loc(llm_calls[0]) == "rag.py:14"
    assert "loc(" not in print_module(module, locations=False)


def test_minilm_tokens_fed_to_a_llama_prefill_fail_verification() -> None:
    module = op_module()
    minilm = next(op for op in module.walk() if isinstance(op, O.TokenizeOp) and op.model.data == "minilm")
    prefill = next(op for op in module.walk() if isinstance(op, O.PrefillOp) and op.model.data == "llama-8b")
    prefill.operands[0] = minilm.result
    with pytest.raises(IRVerifyError, match=r"'op.prefill' operand 'prompt' holds tokens of model 'minilm', but the op "
                                            r"runs 'llama-8b'; tokenize the text with 'llama-8b''s tokenizer\n  at rag.py:14"):
        verify_module(module)


def docs_read_as_text() -> ModuleOp:
    """A branch whose arm reads retrieved docs where its LLM call needs text (the mistake boxing used to hide)."""
    module = agent_module()
    docs = next(op for op in module.walk() if isinstance(op, A.RetrieveOp)).result
    switch = next(op for op in module.walk() if isinstance(op, scf.IndexSwitchOp))
    arm_llm = next(op for op in switch.walk() if isinstance(op, A.LLMCallOp))
    arm_llm.operands[0] = docs
    return module


def test_a_branch_arm_reading_docs_as_text_fails_verification() -> None:
    with pytest.raises(IRVerifyError, match=r"'agent.llm_call' operand 'prompt' at position 0 does not verify: "
                                            r".*agent.docs.*\n  at rag.py:41"):
        verify_module(docs_read_as_text())
