"""Emission: an AgentGraph (docs/agentgraph.md) becomes an `agent` module, one func.func per agent and body.

The agent is a public function; every region (loop body, branch arm, map body) and every callee is a
private function of the same module, named by symbol from its op (callees once per name and signature).
Each op keeps the user's file:line as its location. Planning figures (`Dist`) become `f64` attributes:
the mean, and the p95 in the `*_p95` attribute beside it.

Upstream IRDL binds one type per variadic slot, so the values of a slot whose types differ are boxed
(`agent.box`, to !agent.json); a body function whose parameters arrive boxed unboxes them at entry.
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Callable, Sequence
from typing import cast

from xdsl.dialects.builtin import FunctionType, ModuleOp, i1
from xdsl.dialects.func import FuncOp, ReturnOp
from xdsl.ir import Attribute, Block, Operation, Region, SSAValue

from plait.ir.dialects import agent as A
from plait.ir.location import set_loc
from plait.sdk.dist import Dist
from plait.sdk.graph import AgentGraph, Node

# Speech models: the SDK's catalog has whisper-style STT and DAC-codec TTS models.
STT_WINDOW_S = 30.0
"""Seconds of audio per whisper window (audio is padded to whole windows)."""
STT_FRAMES_PER_WINDOW = 1500
"""Encoder positions per window (whisper: n_audio_ctx)."""
STT_MAX_TOKENS = 448
"""Text tokens a whisper decoder may emit per window (n_text_ctx)."""
TTS_CODES_PER_S = 44100 / 512
"""Audio-code frames per second of speech (DAC 44.1 kHz codec, hop 512)."""
TTS_MAX_S = 30.0
"""Longest utterance a TTS decoder generates in one call, seconds."""

TYPES: dict[str, Callable[[], Attribute]] = {
    "text": A.TextType, "texts": A.TextsType, "docs": A.DocsType, "vec": A.VecType,
    "audio": A.AudioType, "json": A.JsonType, "bool": lambda: i1,
}


def mlir_type(value_type: str) -> Attribute:
    """The MLIR type of an AgentGraph value type (`text` -> !agent.text, `bool` -> i1)."""
    return TYPES[value_type]()


def emit(graph: AgentGraph) -> ModuleOp:
    """The `agent` module of a traced agent: `@<agent>` first, then its bodies and callees.

    >>> print(print_module(emit(plait.trace(answer)), locations=False))   # examples/rag.py
    builtin.module {
      func.func @answer(%0 : !agent.text) -> !agent.text {
        %1 = "agent.embed"(%0) {model = "minilm-l6", ...} : (!agent.text) -> !agent.vec
        ...
    """
    return _Emitter().module(graph)


def figure(node: Node, key: str, default: float = 0.0) -> tuple[float, float]:
    """(mean, p95) of a node's planning figure; a plain number is its own p95."""
    value = node.attrs.get(key)
    if isinstance(value, Dist):
        return value.mean, max(value.mean, value.p95)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value), float(value)
    return default, default


def fill_template(template: str, fields: Sequence[str], constants: dict[str, object]) -> str:
    """`template` with its constants written in and each traced field renamed to its operand index.

    `fill_template("{docs} / {q} ({n})", ["q", "docs"], {"n": 3})` is `"{1} / {0} (3)"`.
    """
    out = []
    for literal, field, spec, conversion in string.Formatter().parse(template):
        out.append(literal.replace("{", "{{").replace("}", "}}"))
        if field is None:
            continue
        if field in constants:
            value = format(_convert(constants[field], conversion), spec or "")
            out.append(value.replace("{", "{{").replace("}", "}}"))
        else:
            conv = f"!{conversion}" if conversion else ""
            out.append("{" + str(list(fields).index(field)) + conv + (f":{spec}" if spec else "") + "}")
    return "".join(out)


def _convert(value: object, conversion: str | None) -> object:
    convert: dict[str, Callable[[object], str]] = {"r": repr, "s": str, "a": ascii}
    return convert[conversion](value) if conversion else value


def _loc(op: Operation, node: Node) -> Operation:
    file, sep, line = node.loc.rpartition(":")
    return set_loc(op, file, int(line)) if sep and line.isdigit() else op


def _mixed(values: Sequence[SSAValue]) -> bool:
    return len({v.type for v in values}) > 1


class _Emitter:
    """Builds the module: hands out unique symbols and emits each function once."""

    def __init__(self) -> None:
        self.functions: list[FuncOp] = []
        self.symbols: set[str] = set()
        self.callees: dict[tuple[str, tuple[Attribute, ...]], str] = {}

    def module(self, graph: AgentGraph) -> ModuleOp:
        params = [mlir_type(p.type) for p in graph.params]
        self.function(graph, self.symbol(graph.agent_name), params, private=False)
        return ModuleOp(self.functions)

    def symbol(self, name: str) -> str:
        """A fresh symbol from `name` (`<lambda>` -> `lambda`; `step`, then `step_1`, ...)."""
        base, n = re.sub(r"[^\w$.]", "", name).lstrip("0123456789$.") or "body", 0
        while (candidate := base if n == 0 else f"{base}_{n}") in self.symbols:
            n += 1
        self.symbols.add(candidate)
        return candidate

    # --- functions ----------------------------------------------------------------------------
    def function(self, graph: AgentGraph, name: str, arg_types: Sequence[Attribute], private: bool) -> FuncOp:
        """Emit `graph` as func.func @name taking `arg_types` (a !agent.json argument is unboxed at entry)."""
        index = len(self.functions)
        self.functions.append(FuncOp(name, FunctionType.from_lists([], [])))  # placeholder keeps the order
        block = Block(arg_types=arg_types)
        env: dict[str, SSAValue] = {}
        for param, arg in zip(graph.params, block.args, strict=True):
            want = mlir_type(param.type)
            value: SSAValue = arg
            if isinstance(arg.type, A.JsonType) and want != arg.type:
                value = self.add(block, A.UnboxOp(arg, want), graph.step(param.name))
            value.name_hint = param.name
            env[param.name] = value
        results: list[SSAValue] = []
        for node in graph.steps:
            if node.kind == "input":
                continue
            if node.kind == "output":
                results = [env[i] for i in node.inputs]
                block.add_op(ReturnOp(*results))
                continue
            env[node.name] = self.node(node, block, [env[i] for i in node.inputs])
        ftype = FunctionType.from_lists(list(arg_types), [r.type for r in results])
        func = FuncOp(name, ftype, Region(block), visibility="private" if private else None)
        if graph.params:
            _loc(func, graph.step(graph.params[0].name))
        self.functions[index] = func
        return func

    def body(self, graph: AgentGraph, operands: Sequence[SSAValue], lead: Sequence[Attribute] = (),
             name: str | None = None) -> str:
        """Emit a region as a private function taking `lead` types then the operands' types."""
        name = self.symbol(name or graph.agent_name)
        self.function(graph, name, [*lead, *(v.type for v in operands)], private=True)
        return name

    # --- nodes --------------------------------------------------------------------------------
    def add(self, block: Block, op: Operation, node: Node) -> SSAValue:
        block.add_op(_loc(op, node))
        return op.results[0]

    def slot(self, block: Block, values: Sequence[SSAValue], node: Node) -> list[SSAValue]:
        """The values of one variadic slot: boxed to !agent.json when their types differ."""
        if not _mixed(values):
            return list(values)
        return [v if isinstance(v.type, A.JsonType) else self.add(block, A.BoxOp(v), node) for v in values]

    def node(self, node: Node, block: Block, ins: list[SSAValue]) -> SSAValue:
        value = self.add(block, getattr(self, f"op_{node.kind}")(node, block, ins), node)
        value.name_hint = node.name
        return value

    def op_prompt(self, node: Node, block: Block, ins: list[SSAValue]) -> Operation:
        template = fill_template(str(node.attrs["template"]), cast(list[str], node.attrs.get("fields", [])),
                                 cast(dict[str, object], node.attrs.get("constants", {})))
        return A.PromptOp(template, self.slot(block, ins, node))

    def op_llm(self, node: Node, block: Block, ins: list[SSAValue]) -> Operation:
        limit = int(cast(int, node.attrs["max_tokens"]))
        (p, p95), (o, o95) = figure(node, "prompt_tokens"), figure(node, "output_tokens", float(limit))
        return A.LLMCallOp(ins[0], model=node.target, max_tokens=limit, prompt_tokens=p, prompt_tokens_p95=p95,
                           output_tokens=min(o, limit), output_tokens_p95=min(o95, limit),
                           json=node.type == "json")

    def op_stt(self, node: Node, block: Block, ins: list[SSAValue]) -> Operation:
        secs, secs95 = figure(node, "audio_seconds", STT_WINDOW_S)
        frames = [STT_FRAMES_PER_WINDOW * max(1, math.ceil(s / STT_WINDOW_S)) for s in (secs, secs95)]
        o, o95 = figure(node, "output_tokens")
        return A.STTOp(ins[0], model=node.target, max_tokens=STT_MAX_TOKENS, prompt_tokens=frames[0],
                       prompt_tokens_p95=frames[1], output_tokens=min(o, STT_MAX_TOKENS),
                       output_tokens_p95=min(o95, STT_MAX_TOKENS))

    def op_tts(self, node: Node, block: Block, ins: list[SSAValue]) -> Operation:
        limit = math.ceil(TTS_MAX_S * TTS_CODES_PER_S)
        p, p95 = figure(node, "text_tokens")
        secs, secs95 = figure(node, "audio_seconds")
        return A.TTSOp(ins[0], model=node.target, vocoder=node.target, max_tokens=limit, prompt_tokens=p,
                       prompt_tokens_p95=p95, output_tokens=min(secs * TTS_CODES_PER_S, limit),
                       output_tokens_p95=min(secs95 * TTS_CODES_PER_S, limit))

    def op_embed(self, node: Node, block: Block, ins: list[SSAValue]) -> Operation:
        t, t95 = figure(node, "input_tokens")
        return A.EmbedOp(ins[0], model=node.target, input_tokens=t, input_tokens_p95=t95)

    def op_retrieve(self, node: Node, block: Block, ins: list[SSAValue]) -> Operation:
        return A.RetrieveOp(ins[0], index=node.target, k=int(cast(int, node.attrs["k"])),
                            doc_tokens=round(figure(node, "doc_tokens")[0]),
                            index_docs=int(cast(int, node.attrs.get("index_docs", 0))),
                            dim=int(cast(int, node.attrs.get("dim", 0))))

    def op_tool(self, node: Node, block: Block, ins: list[SSAValue]) -> Operation:
        ms, ms95 = figure(node, "latency_ms")
        assert node.type is not None
        return A.ToolCallOp(node.target, self.slot(block, ins, node), mlir_type(node.type), latency_ms=ms,
                            latency_ms_p95=ms95, cpu=float(cast(float, node.attrs.get("cpu", 1.0))))

    def op_gather(self, node: Node, block: Block, ins: list[SSAValue]) -> Operation:
        return A.GatherOp(self.slot(block, ins, node))

    def op_loop(self, node: Node, block: Block, ins: list[SSAValue]) -> Operation:
        invariants, init = self.slot(block, ins[:-1], node), ins[-1]
        body = self.body(node.regions["body"], [*invariants, init])
        most = int(cast(int, node.attrs["max_iters"]))
        mean, p95 = figure(node, "expected_iters", float(most))
        return A.LoopOp(body, invariants, [init], max_iters=most, expected_iters=min(max(mean, 1.0), most),
                        expected_iters_p95=min(max(p95, mean, 1.0), most))

    def op_branch(self, node: Node, block: Block, ins: list[SSAValue]) -> Operation:
        names = cast(list[str], node.attrs["arms"])
        selector = self.add(block, A.SelectArmOp(ins[0], names), node)
        args = self.slot(block, ins[1:], node)
        arms = [self.body(node.regions[name], args, name=name) for name in names]
        assert node.type is not None
        return A.BranchOp(selector, arms, args, [mlir_type(node.type)],
                          probabilities=cast(list[float], node.attrs["p"]))

    def op_map(self, node: Node, block: Block, ins: list[SSAValue]) -> Operation:
        items, invariants = ins[0], self.slot(block, ins[1:], node)
        body = self.body(node.regions["body"], invariants, lead=[A.TextType()])
        mean, p95 = figure(node, "expected_len")
        return A.MapOp(body, items, invariants, expected_len=mean, expected_len_p95=p95,
                       text_result=node.type == "texts")

    def op_call(self, node: Node, block: Block, ins: list[SSAValue]) -> Operation:
        args, callee = self.slot(block, ins, node), node.regions["callee"]
        key = (callee.agent_name, tuple(v.type for v in args))
        if key not in self.callees:
            self.callees[key] = self.body(callee, args)
        return A.CallOp(self.callees[key], args, [mlir_type(t) for t in callee.result_types])
