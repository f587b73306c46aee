"""Emission: an AgentGraph (docs/agentgraph.md) becomes an `agent` module: one func.func per agent.

The agent is a public function. Loop, branch and map bodies are regions of upstream `scf` ops (see
plait.ir.dialects.control) that read outer values directly, so every value keeps its type across control
flow; a sub-agent is a private function reached by `func.call`, emitted once per distinct body (two calls
whose figures or models differ get two functions). Each op keeps the user's file:line as its location.
Planning figures (`Dist`) become `#agent.dist<mean, p95>` attributes.

Upstream IRDL binds one type per variadic slot, so the operands of a prompt, tool call or gather whose
types differ are boxed (`agent.box`, to !agent.json); nothing else is.
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Callable, Sequence
from typing import cast

from xdsl.dialects import func
from xdsl.dialects.builtin import FileLineColLoc, FunctionType, ModuleOp, StringAttr, i1
from xdsl.dialects.func import FuncOp, ReturnOp
from xdsl.dialects.scf import YieldOp
from xdsl.ir import Attribute, Block, Operation, Region, SSAValue

from plait.ir.dialects import agent as A
from plait.ir.dialects import control as C
from plait.ir.location import set_loc
from plait.ir.module import print_module
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
      func.func @answer(%question: !agent.text) -> !agent.text {
        %embed = agent.embed %question {model = "minilm-l6", input_tokens = #agent.dist<64.0, 64.0>} : !agent.text -> !agent.vec
        ...
    """
    return _Emitter().module(graph)


def figure(node: Node, key: str, default: float = 0.0) -> tuple[float, float]:
    """(mean, p95) of a node's planning figure; a plain number is its own p95."""
    value = node.attrs.get(key)
    if isinstance(value, Dist):    # rounded to 0.01: the figure prints short, and p95 >= mean still holds
        return round(value.mean, 2), round(max(value.mean, value.p95), 2)
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


def _loc_unlocated(op: Operation, node: Node) -> Operation:
    """`op` and every op inside it without a location of its own at `node`'s (scf and arith glue)."""
    for inner in op.walk():
        if not isinstance(inner.location, FileLineColLoc):
            _loc(inner, node)
    return op


def _mixed(values: Sequence[SSAValue]) -> bool:
    return len({v.type for v in values}) > 1


def _shape(fn: FuncOp) -> str:
    """`fn` printed without its name, value names and locations: equal for two emissions of one body."""
    copy = fn.clone()
    copy.sym_name = StringAttr("_")
    for op in copy.walk():
        for value in (*op.results, *(a for r in op.regions for b in r.blocks for a in b.args)):
            value.name_hint = None
    return print_module(copy, generic=True, locations=False)



def sampling_of(node: Node) -> A.SamplingAttr:
    """An llm node's sampling arguments (plait.llm's temperature, top_p, stop, seed), defaults where not given."""
    a = node.attrs
    stop = a.get("stop")
    seed = a.get("seed")
    schema = a.get("json_schema")
    return A.SamplingAttr(temperature=float(cast(float, a.get("temperature", A.SAMPLING_DEFAULTS["temperature"]))),
                          top_p=float(cast(float, a.get("top_p", A.SAMPLING_DEFAULTS["top_p"]))),
                          seed=seed if isinstance(seed, int) else None,
                          stop=[str(x) for x in stop] if isinstance(stop, list) else (),
                          json_schema=schema if isinstance(schema, str) else None)

class _Emitter:
    """Builds the module: hands out unique symbols and emits each distinct callee once."""

    def __init__(self) -> None:
        self.functions: list[FuncOp] = []
        self.symbols: set[str] = set()
        self.callees: dict[str, list[tuple[str, str]]] = {}   # sub-agent -> [(symbol, shape)]

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

    # --- functions and regions ------------------------------------------------------------------
    def function(self, graph: AgentGraph, name: str, arg_types: Sequence[Attribute], private: bool) -> FuncOp:
        """Emit `graph` as func.func @name taking `arg_types`."""
        index = len(self.functions)
        self.functions.append(FuncOp(name, FunctionType.from_lists([], [])))  # placeholder keeps the order
        block = Block(arg_types=arg_types)
        env: dict[str, SSAValue] = {p.name: arg for p, arg in zip(graph.params, block.args, strict=True)}
        results = self.steps(graph, block, env)
        block.add_op(ReturnOp(*results))
        ftype = FunctionType.from_lists(list(arg_types), [r.type for r in results])
        fn = FuncOp(name, ftype, Region(block), visibility="private" if private else None)
        if graph.params:
            _loc(fn, graph.step(graph.params[0].name))
        self.functions[index] = fn
        return fn

    def steps(self, graph: AgentGraph, block: Block, env: dict[str, SSAValue]) -> list[SSAValue]:
        """Emit the steps of `graph` (a function or a region) into `block`; return its output values.

        `env` maps the graph's parameters to values: block arguments, or outer values a region reads.
        """
        env = dict(env)
        for param in graph.params:
            if env[param.name].name_hint is None:
                env[param.name].name_hint = param.name
        for node in graph.steps:
            if node.kind == "output":
                return [env[i] for i in node.inputs]
            if node.kind != "input":
                env[node.name] = self.node(node, block, [env[i] for i in node.inputs])
        raise AssertionError(f"graph {graph.agent_name!r} has no output node")

    def region(self, graph: AgentGraph, block: Block, values: Sequence[SSAValue]) -> list[SSAValue]:
        """Emit a region whose parameters are `values` (in order) into `block`."""
        return self.steps(graph, block, {p.name: v for p, v in zip(graph.params, values, strict=True)})

    # --- nodes --------------------------------------------------------------------------------
    def add(self, block: Block, op: Operation, node: Node) -> SSAValue:
        block.add_op(_loc(op, node))
        return op.results[0]

    def slot(self, block: Block, values: Sequence[SSAValue], node: Node) -> list[SSAValue]:
        """The values of one variadic slot of an agent op: boxed to !agent.json when their types differ."""
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
                           json=node.type == "json", sampling=sampling_of(node))

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
                       prompt_tokens_p95=p95, output_tokens=min(round(secs * TTS_CODES_PER_S, 2), limit),
                       output_tokens_p95=min(round(secs95 * TTS_CODES_PER_S, 2), limit))

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
        call = A.ToolCallOp(node.target, self.slot(block, ins, node), mlir_type(node.type), latency_ms=ms,
                            latency_ms_p95=ms95, cpu=float(cast(float, node.attrs.get("cpu", 1.0))))
        params = cast(list[str], node.attrs.get("params", []))
        constants = cast(dict[str, str | int | float | bool], node.attrs.get("constants", {}))
        call.attributes.update(A.tool_arguments(params, constants))   # a worker calls the tool with them
        return call

    def op_gather(self, node: Node, block: Block, ins: list[SSAValue]) -> Operation:
        return A.GatherOp(self.slot(block, ins, node))

    def op_loop(self, node: Node, block: Block, ins: list[SSAValue]) -> Operation:
        *captured, init = ins
        body = Block(arg_types=[init.type])
        done, new = self.region(node.regions["body"], body, [*captured, body.args[0]])
        most = int(cast(int, node.attrs["max_iters"]))
        mean, p95 = figure(node, "expected_iters", float(most))
        op = C.loop([init], body, done, [new], max_iters=most, expected_iters=min(max(mean, 1.0), most),
                    expected_iters_p95=min(max(p95, mean, 1.0), most))
        return _loc_unlocated(op, node)

    def op_branch(self, node: Node, block: Block, ins: list[SSAValue]) -> Operation:
        names = cast(list[str], node.attrs["arms"])
        selector = self.add(block, A.SelectArmOp(ins[0], names), node)
        selector.name_hint = f"{node.name}_arm"
        arms = []
        for name in names:
            arm = Block()
            (out,) = self.region(node.regions[name], arm, ins[1:])
            arm.add_op(_loc(YieldOp(out), node))
            arms.append(arm)
        assert node.type is not None
        return C.branch(selector, arms, [mlir_type(node.type)], probabilities=cast(list[float], node.attrs["p"]))

    def op_map(self, node: Node, block: Block, ins: list[SSAValue]) -> Operation:
        items, captured = ins[0], ins[1:]
        mean, p95 = figure(node, "expected_len")
        result = A.TextsType() if node.type == "texts" else A.JsonType()
        (count, *before, empty, loop_op), body, item = C.map_items(items, result, expected_len=mean,
                                                                   expected_len_p95=p95)
        for op in (count, *before, empty):
            self.add(block, op, node)
        count.results[0].name_hint, empty.results[0].name_hint = f"{items.name_hint}_len", "acc"
        body.args[0].name_hint, body.args[1].name_hint = "i", "acc"
        item.name_hint = node.regions["body"].params[0].name
        (out,) = self.region(node.regions["body"], body, [item, *captured])
        C.end_map(body, out)
        return _loc_unlocated(loop_op, node)

    def op_call(self, node: Node, block: Block, ins: list[SSAValue]) -> Operation:
        callee = node.regions["callee"]
        return func.CallOp(self.callee(callee, [v.type for v in ins]), ins, [mlir_type(t) for t in callee.result_types])

    def callee(self, graph: AgentGraph, arg_types: Sequence[Attribute]) -> str:
        """The symbol of `graph` emitted as a private function; an identical earlier emission is reused.

        Two calls of one sub-agent differ when their figures (prompt sizes derived from the caller's
        arguments) or models (agents made by one factory) differ: each such call gets its own function.
        """
        symbol = self.symbol(graph.agent_name)
        fn = self.function(graph, symbol, arg_types, private=True)
        shape = _shape(fn)
        for other, other_shape in self.callees.get(graph.agent_name, []):
            if other_shape == shape:
                self.functions.remove(fn)
                self.symbols.discard(symbol)
                return other
        self.callees.setdefault(graph.agent_name, []).append((symbol, shape))
        return symbol
