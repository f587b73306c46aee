"""Lowering agent -> op: one test per rewrite, then canonicalize and cse doing real work."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

import _ir_agents as agents
import pytest
from xdsl.dialects import scf
from xdsl.dialects.builtin import FunctionType, ModuleOp, i1
from xdsl.dialects.func import FuncOp, ReturnOp
from xdsl.ir import Attribute, Block, Operation, Region

from plait.ir import set_loc, user_loc, verify_module
from plait.ir.dialects import agent as A
from plait.ir.dialects import op as O
from plait.ir.emit import emit
from plait.ir.pipeline import IRPassError, passes, run_passes
from plait.sdk import trace

TEXT, AUDIO, VEC = A.TextType(), A.AudioType(), A.VecType()


def one_step(inputs: Sequence[Attribute], build: Callable[[Block], Operation]) -> ModuleOp:
    """A module whose one function runs the op `build` makes (at demo.py:7) and returns its result."""
    block = Block(arg_types=inputs)
    op = set_loc(build(block), "demo.py", 7)
    block.add_ops([op, ReturnOp(op.results[0])])
    ftype = FunctionType.from_lists(list(inputs), [op.results[0].type])
    module = ModuleOp([FuncOp("demo", ftype, Region(block))])
    verify_module(module)
    return module


def lowered(module: ModuleOp, names: Sequence[str] = ("lower-agent-to-op",)) -> list[Operation]:
    run_passes(module, passes(names))
    return [op for op in module.walk() if op.name.startswith(("op.", "agent."))]


def names(ops: list[Operation]) -> list[str]:
    return [op.name for op in ops]


def test_llm_call_becomes_tokenize_prefill_decode_detokenize() -> None:
    module = one_step([TEXT], lambda b: A.LLMCallOp(b.args[0], model="llama-3.1-8b", max_tokens=256, prompt_tokens=900,
                                                    output_tokens=160, output_tokens_p95=226))
    ops = lowered(module)
    assert names(ops) == ["op.tokenize", "op.prefill", "op.decode", "op.detokenize"]
    tok, kv, dec, detok = ops
    assert isinstance(kv, O.PrefillOp) and isinstance(dec, O.DecodeOp)
    assert kv.prompt_tokens.values == (900, 900) and kv.kv.type == A.KVType("llama-3.1-8b")
    assert tok.results[0].type == A.TokensType("llama-3.1-8b") == dec.results[0].type
    assert dec.max_tokens.value.data == 256 and dec.output_tokens.values == (160, 226)
    assert all(user_loc(op) == "demo.py:7" for op in ops)


def test_stt_becomes_encode_then_the_speech_decoder() -> None:
    module = one_step([AUDIO], lambda b: A.STTOp(b.args[0], model="whisper-small", max_tokens=448,
                                                 prompt_tokens=1500, output_tokens=15))
    ops = lowered(module)
    assert names(ops) == ["op.encode", "op.prefill", "op.decode", "op.detokenize"]
    enc, kv = ops[0], ops[1]
    assert isinstance(enc, O.EncodeOp) and isinstance(kv, O.PrefillOp)
    assert enc.tokens.values[0] == 1500 and kv.context is enc.result and kv.prompt is None


def test_tts_becomes_tokenize_decoder_and_vocode() -> None:
    module = one_step([TEXT], lambda b: A.TTSOp(b.args[0], model="parler-tts-mini", vocoder="parler-tts-mini",
                                                max_tokens=2584, prompt_tokens=55, output_tokens=1576))
    ops = lowered(module)
    assert names(ops) == ["op.tokenize", "op.prefill", "op.decode", "op.vocode"]
    assert isinstance(ops[3], O.VocodeOp) and ops[3].tokens.values[0] == 1576


def test_embed_becomes_tokenize_and_encode() -> None:
    module = one_step([TEXT], lambda b: A.EmbedOp(b.args[0], model="minilm-l6", input_tokens=64))
    assert names(lowered(module)) == ["op.tokenize", "op.encode"]


def test_retrieve_becomes_ann_search() -> None:
    module = one_step([VEC], lambda b: A.RetrieveOp(b.args[0], index="wiki", k=8, doc_tokens=100,
                                                    index_docs=1_000_000, dim=384))
    (search,) = lowered(module)
    assert isinstance(search, O.AnnSearchOp) and search.index_docs.value.data == 1_000_000


def test_tool_call_becomes_py_call() -> None:
    module = one_step([TEXT], lambda b: A.ToolCallOp("is_done", [b.args[0]], i1, latency_ms=0.1,
                                                     latency_ms_p95=0.3, cpu=0.5))
    (call,) = lowered(module)
    assert isinstance(call, O.PyCallOp) and call.tool.data == "is_done" and call.latency_ms.values == (0.1, 0.3)


def test_prompt_becomes_format() -> None:
    module = one_step([TEXT, TEXT], lambda b: A.PromptOp("{0} and {1}", list(b.args)))
    (fmt,) = lowered(module)
    assert isinstance(fmt, O.FormatOp) and fmt.template.data == "{0} and {1}"


def test_control_flow_keeps_its_regions_and_lowers_the_ops_inside() -> None:
    module = emit(trace(agents.mixed_loop))
    run_passes(module, passes(("lower-agent-to-op", "canonicalize", "cse")))
    (loop,) = [op for op in module.walk() if isinstance(op, scf.WhileOp)]
    inside = Counter(op.name for op in loop.before_region.walk())
    assert inside["op.prefill"] == inside["op.decode"] == 1 and inside["op.py_call"] == 1
    assert not {n for n in inside if n.startswith("agent.")} - {"agent.box"}
    verify_module(module)


def _counts(agent: object, names_: Sequence[str]) -> Counter[str]:
    module = emit(trace(agent))
    run_passes(module, passes(names_))
    return Counter(op.name for op in module.walk())


def test_cse_tokenizes_and_prefills_a_reused_prompt_once_but_decodes_twice() -> None:
    before = _counts(agents.twice, ["lower-agent-to-op"])
    after = _counts(agents.twice, ["lower-agent-to-op", "canonicalize", "cse"])
    assert (before["op.tokenize"], before["op.prefill"], before["op.decode"]) == (2, 2, 2)
    assert (after["op.tokenize"], after["op.prefill"], after["op.decode"]) == (1, 1, 2)  # sampling is not pure
    assert sum(after.values()) == sum(before.values()) - 2


def test_canonicalize_drops_a_dead_embedding() -> None:
    before = _counts(agents.dead_embed, ["lower-agent-to-op"])
    after = _counts(agents.dead_embed, ["lower-agent-to-op", "canonicalize"])
    assert before["op.encode"] == 1 and after["op.encode"] == 0
    assert (before["op.tokenize"], after["op.tokenize"]) == (2, 1)


def test_canonicalize_reuses_the_tokens_of_an_answer_fed_back_as_a_prompt() -> None:
    before = _counts(agents.chain, ["lower-agent-to-op"])
    after = _counts(agents.chain, ["lower-agent-to-op", "canonicalize"])
    assert (before["op.tokenize"], before["op.detokenize"]) == (2, 2)
    assert (after["op.tokenize"], after["op.detokenize"]) == (1, 1)


def test_canonicalize_drops_dead_boxes_and_folds_identity_templates() -> None:
    def build(b: Block) -> Operation:
        b.add_op(A.BoxOp(b.args[0]))     # read by nothing
        return A.PromptOp("{0}", [b.args[0]])

    module = one_step([TEXT], build)
    assert names(lowered(module, ["canonicalize"])) == []  # the box and the prompt are gone
    func = module.body.block.first_op
    assert isinstance(func, FuncOp)
    ret = func.body.block.last_op
    assert isinstance(ret, ReturnOp) and ret.arguments[0] is func.args[0]


def test_a_failing_pass_is_a_short_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from plait.ir.passes import lower_agent

    class Broken(lower_agent.RewritePattern):
        def match_and_rewrite(self, op: Operation, rewriter: object, /) -> None:
            if isinstance(op, A.EmbedOp):
                raise RuntimeError("no encoder for you")

    monkeypatch.setattr(lower_agent, "PATTERNS", (Broken,))
    with pytest.raises(IRPassError, match=r"^pass 'lower-agent-to-op' failed: RuntimeError: no encoder for you"):
        run_passes(emit(trace(agents.dead_embed)), passes(["lower-agent-to-op"]))


def test_a_pass_leaving_an_invalid_module_names_the_op(monkeypatch: pytest.MonkeyPatch) -> None:
    from plait.ir.passes import lower_agent

    class Retype(lower_agent.RewritePattern):
        def match_and_rewrite(self, op: Operation, rewriter: object, /) -> None:
            if isinstance(op, A.RetrieveOp) and op.k.value.data == 4:
                op.attributes["k"] = A.i64(0)

    monkeypatch.setattr(lower_agent, "PATTERNS", (Retype,))
    with pytest.raises(IRPassError, match=r"left a module that does not verify:\n'agent.retrieve' attribute 'k' "
                                          r"must be >= 1, got 0\n  at _ir_agents.py:\d+"):
        run_passes(emit(trace(agents.mixed_loop)), passes(["lower-agent-to-op"]))
