"""Group a lowered (op-dialect) module into placement stages, each with its expected visits per request.

A stage is the unit the solver places: one LLM call's prefill, its decode, an encoder, a vector search,
a tool, a vocoder. Cheap glue (tokenize, detokenize, format, box, gather, list ops) rides with the stage
that consumes or produces it. Loops (scf.while), branches (scf.index_switch) and maps (scf.for) are
walked into their regions, multiplying visits by `agent.iters`, the arm's probability and `agent.len`
(plait.ir.dialects.control); sub-agent calls (func.call) are walked into the callee function.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from xdsl.dialects import scf
from xdsl.dialects.builtin import ArrayAttr, FloatAttr, IntegerAttr, ModuleOp, StringAttr
from xdsl.dialects.func import CallOp, FuncOp, ReturnOp
from xdsl.ir import Block, Operation, SSAValue

from plait.ir.dialects.agent import DistAttr
from plait.ir.dialects.control import ITERS, LENGTH, PROBABILITIES, arms
from plait.planner.catalog import Catalog
from plait.planner.workload import OpSpec, kv_cache_bytes
from plait.sdk.errors import PlaitError

# op name -> stage kind; every other op is glue and belongs to a neighbouring stage.
STAGE_KINDS = {"op.prefill": "prefill", "op.decode": "decode", "op.encode": "encode",
               "op.ann_search": "search", "op.py_call": "tool", "op.vocode": "vocode"}
# Figures the IR does not carry yet: stated as assumptions in every report that uses them.
DEFAULT_INDEX_DOCS = 1_000_000
WHISPER_FRAMES = 1500          # a 30 s window encodes to 1500 frames
CODEC_FRAMES_PER_S = 86.0      # DAC 44.1 kHz codec frames per second of audio (Parler-TTS)
BYTES_PER_TOKEN_TEXT = 4.0


class StageError(PlaitError):
    """The lowered module cannot be grouped into stages."""


@dataclass
class StageWork:
    """One stage: what it runs, how often per request, and the IR ops it groups."""

    name: str
    kind: str
    description: str
    spec: OpSpec
    visits: float
    loc: str
    concurrency: float = 1.0           # executions of one request that overlap (a map's elements)
    serial_p95: float = 1.0            # executions in turn for a request that runs long (p95 loop iterations)
    serial_p50: float = 1.0            # executions in turn for the median request (branch arms at their median)
    work_p95: float = 1.0              # p95 over expected service time of one execution (tokens, tool latency)
    work_cs2: float = 0.0              # squared coefficient of variation of that service time
    steps: float = 1.0                 # decode: output tokens generated per execution
    tool_latency_s: float = 0.0        # tool: declared latency of one call
    tool_cpu: float = 1.0              # tool: cores one call keeps busy
    pair: str | None = None            # LLM decode: the prefill stage of the same call (its KV cache's source)
    loop: str | None = None            # the innermost loop whose passes run this stage again (their waits correlate)
    per_pass: float = 1.0              # executions in turn per pass of that loop (a branch arm: its probability)
    ops: list[Operation] = field(default_factory=list)


@dataclass
class StageEdge:
    src: str
    dst: str
    bytes: float


@dataclass
class StageGraph:
    stages: list[StageWork]
    edges: list[StageEdge]
    assumptions: list[str]

    def stage(self, name: str) -> StageWork:
        return next(s for s in self.stages if s.name == name)


def _num(op: Operation, name: str, default: float = 0.0) -> float:
    """A number attribute of `op`; for an #agent.dist its mean (`name_p95`: its p95)."""
    attr = op.attributes.get(name)
    if attr is None and name.endswith("_p95") and isinstance(d := op.attributes.get(name[:-4]), DistAttr):
        return d.values[1]
    if isinstance(attr, DistAttr):
        return attr.values[0]
    if isinstance(attr, FloatAttr | IntegerAttr):
        return float(attr.value.data)
    return default


def _str(op: Operation, name: str) -> str:
    attr = op.attributes.get(name)
    return attr.data if isinstance(attr, StringAttr) else ""


def _model(op: Operation) -> str:
    if model := _str(op, "model"):
        return model
    kv = op.operands[0].type if op.operands else None   # op.decode takes its model from the kv type
    return str(getattr(kv, "model", StringAttr("")).data) if kv is not None else ""


def _loc(op: Operation) -> str:
    loc = getattr(op, "location", None)
    file, line = getattr(loc, "filename", None), getattr(loc, "line", None)
    if file is not None and line is not None:
        return f"{getattr(file, 'data', file)}:{getattr(line, 'data', line)}"
    return ""


@dataclass(frozen=True)
class _Visit:
    """How often the ops being walked run per request (see _Walker.walk), and what they wait for."""

    visits: float
    serial: float
    serial95: float
    serial50: float
    stack: tuple[str, ...]
    after: frozenset[str]
    extra: frozenset[str] = frozenset()      # stages every value read in a branch arm depends on (its selector)
    loop: str | None = None                  # the innermost loop being walked
    per_pass: float = 1.0                    # executions in turn per pass of it

    def scaled(self, visits: float, serial: float, serial95: float, serial50: float,
               after: frozenset[str] | None = None, extra: frozenset[str] = frozenset()) -> _Visit:
        return _Visit(self.visits * visits, self.serial * serial, self.serial95 * serial95, self.serial50 * serial50,
                      self.stack, self.after if after is None else after, extra, self.loop, self.per_pass * serial)


class _Walker:
    """Walks functions from the entry, keeping for each SSA value the stages it depends on."""

    def __init__(self, module: ModuleOp, catalog: Catalog):
        self.funcs = {f.sym_name.data: f for f in module.ops if isinstance(f, FuncOp)}
        self.catalog = catalog
        self.stages: dict[str, StageWork] = {}
        self.edges: dict[tuple[str, str], float] = {}
        self.assumptions: list[str] = []
        self.counts: dict[str, int] = {}
        self.made: dict[Operation, str] = {}     # op -> the stage its latest visit made

    def _name(self, kind: str, what: str, loc: str) -> str:
        base = f"{kind}:{what}" + (f"@{loc}" if loc else "")
        self.counts[base] = self.counts.get(base, 0) + 1
        return base if self.counts[base] == 1 else f"{base}#{self.counts[base]}"

    def _assume(self, text: str) -> None:
        if text not in self.assumptions:
            self.assumptions.append(text)

    def walk(self, name: str, args: list[frozenset[str]], visits: float, serial: float, serial95: float,
             serial50: float, stack: tuple[str, ...] = (), after: frozenset[str] = frozenset(),
             loop: tuple[str | None, float] = (None, 1.0)) -> list[frozenset[str]]:
        """Walk function @name; return, per result, the stages it depends on.

        `visits` counts executions per request (the load); `serial` counts those that follow one another
        (the latency): a map's elements add to the first, not the second; `serial95` is `serial` for a request
        that runs long (loops at their p95 iterations), `serial50` for the median request (a branch arm at its
        median count of runs: 0 for an arm most requests skip). Every stage made here also
        waits for the stages in `after` (an earlier branch arm: one request runs its arms' visits in turn).
        `loop`: the innermost loop the call sits in and the call's executions in turn per pass of it.
        """
        if name in stack:
            raise StageError(f"agent function @{name} calls itself (through {' -> '.join(stack)}).\n"
                             "To fix: recursion cannot be planned; bound it with plait.loop(max_iters=...).")
        func = self.funcs.get(name)
        if func is None:
            raise StageError(f"the module has no function @{name}.\nTo fix: lower the whole module.")
        env: dict[SSAValue, frozenset[str]] = dict(zip(func.body.block.args, args, strict=True))
        outs = self._block(func.body.block, env, _Visit(visits, serial, serial95, serial50, (*stack, name), after,
                                                        loop=loop[0], per_pass=loop[1]))
        if outs is None:
            raise StageError(f"function @{name} has no func.return.")
        return outs

    def _block(self, block: Block, env: dict[SSAValue, frozenset[str]], at: _Visit) -> list[frozenset[str]] | None:
        """Walk the ops of `block`; return the stages each operand of its terminator depends on."""
        for op in block.ops:
            deps = frozenset().union(*(env.get(v, frozenset()) for v in op.operands))
            operands = [env.get(v, frozenset()) for v in op.operands]
            if isinstance(op, ReturnOp | scf.YieldOp | scf.ConditionOp):
                return operands
            if op.name in STAGE_KINDS:
                stage = self._stage(op, at)
                for dep in deps:
                    self.edges[(dep, stage.name)] = self.edges.get((dep, stage.name), 0.0) + self._bytes(op)
                for dep in at.after - deps:     # ordering only: nothing moves
                    self.edges.setdefault((dep, stage.name), 0.0)
                produced = frozenset({stage.name})
            elif isinstance(op, scf.WhileOp):
                iters = _num(op, ITERS, 1.0)
                iters95 = max(_num(op, f"{ITERS}_p95", iters), iters)
                if iters - math.floor(iters) > 0.05:   # runs are whole: a long request runs the ceiling of 2.62
                    iters95 = max(iters95, math.ceil(iters))
                body = op.before_region.block
                passes = replace(at.scaled(iters, iters, iters95, iters), loop=self._name("loop", "", _loc(op)),
                                 per_pass=1.0)
                outs = self._region(body, env, operands, passes)
                # what follows waits for the carried value and for the last `until` check
                produced = frozenset().union(*outs) or deps
            elif isinstance(op, scf.IndexSwitchOp):
                probs = op.attributes[PROBABILITIES]
                assert isinstance(probs, ArrayAttr)
                # Over several passes (a loop) one request runs several arms, in turn: each arm waits for the one
                # before. In one pass it runs one arm: the arms are alternatives, side by side, and the path takes
                # the longest (in series a 5 % arm and a 25 % arm both counted on the p95 clock: twice as high).
                once = at.serial95 <= 1.0 + 1e-9
                previous: frozenset[str] = at.after
                ends: frozenset[str] = frozenset()
                for region, p in zip(arms(op), probs.data, strict=True):
                    assert isinstance(p, FloatAttr)
                    share = float(p.value.data)
                    slow = arm_p95(at.serial95, share) / at.serial95 if at.serial95 > 0 else share
                    mid = arm_p50(at.serial50, share) / at.serial50 if at.serial50 > 0 else share
                    outs = self._region(region.block, env, [], at.scaled(share, share, slow, mid, previous, deps))
                    ends |= frozenset().union(*outs)
                    if not once:
                        previous = frozenset().union(*outs) or previous
                produced = (ends if once else previous) or deps
            elif isinstance(op, scf.ForOp):
                length = _num(op, LENGTH, 1.0)
                body = op.body.block
                outs = self._region(body, env, [frozenset(), deps], at.scaled(length, 1.0, 1.0, 1.0))
                produced = frozenset().union(*outs) or deps
            elif isinstance(op, CallOp):
                outs = self.walk(op.callee.root_reference.data, operands, at.visits, at.serial, at.serial95,
                                 at.serial50, at.stack, at.after, (at.loop, at.per_pass))
                produced = frozenset().union(*outs) or deps
            else:   # glue (tokenize, format, box, ...): placed with its neighbours by PlacePass
                produced = deps
            for result in op.results:
                env[result] = produced
        return None

    def _region(self, block: Block, env: dict[SSAValue, frozenset[str]], args: list[frozenset[str]],
                at: _Visit) -> list[frozenset[str]]:
        """Walk a region's block: its arguments depend on `args`; it reads outer values through `env`."""
        inner = {value: deps | at.extra for value, deps in env.items()} if at.extra else dict(env)
        inner.update(zip(block.args, args, strict=False))
        outs = self._block(block, inner, at)
        assert outs is not None, "an scf region ends in scf.yield or scf.condition"
        return outs

    def _bytes(self, op: Operation) -> float:
        """Bytes the stage's inputs carry per execution (the KV cache for a decode, text otherwise)."""
        if op.name == "op.decode":
            prefill = op.operands[0].owner
            model = self.catalog.model(_model(op))
            tokens = int(_num(prefill, "prompt_tokens", 1.0)) if isinstance(prefill, Operation) else 1
            return float(kv_cache_bytes(model, max(tokens, 1)))
        if op.name == "op.vocode":
            return _num(op, "tokens", 1.0) * 9 * 2      # codebook ids
        return max(_num(op, "tokens", 0.0), _num(op, "prompt_tokens", 0.0), 64.0) * BYTES_PER_TOKEN_TEXT

    def _stage(self, op: Operation, at: _Visit) -> StageWork:
        kind, loc = STAGE_KINDS[op.name], _loc(op)
        visits, serial, serial95, serial50 = at.visits, at.serial, at.serial95, at.serial50
        model = _model(op)
        if kind == "prefill":
            tokens = max(1, round(_num(op, "prompt_tokens", 1.0)))
            cross = None
            if len(op.operands) and any(str(v.type) == "!agent.vec" for v in op.operands):
                cross = WHISPER_FRAMES
            cached = min(round(_num(op, "prefix_tokens", 0.0)), tokens - 1)   # plait.ir.passes.prefix_reuse
            spec = OpSpec(op="prefill", model=model, tokens=tokens, cross_tokens=cross, cached_tokens=cached)
            reuse = f", {cached} reused from the KV cache, planned" if cached else ""
            if cached:
                self._assume(f"prefix reuse at {loc or model}: {cached} of {tokens} prompt tokens per prefill come from "
                             "the KV cache of an earlier prompt (planned, not measured: the engine does not reuse "
                             "prefixes yet)")
            what, desc = model, f"prefill of {model} ({tokens} prompt tokens{reuse})"
        elif kind == "decode":
            prefill = op.operands[0].owner
            prompt = _num(prefill, "prompt_tokens", 1.0) if isinstance(prefill, Operation) else 1.0
            steps = max(1.0, _num(op, "output_tokens", 1.0))
            spec = OpSpec(op="decode", model=model, ctx=int(prompt + steps / 2))
            what, desc = model, f"decode of {model} ({steps:g} output tokens)"
        elif kind == "encode":
            audio = any(str(v.type) == "!agent.audio" for v in op.operands)
            tokens = WHISPER_FRAMES if audio else max(1, round(_num(op, "tokens", 1.0)))
            if audio:
                self._assume(f"speech encoder input: {WHISPER_FRAMES} frames (one 30 s window) per clip")
            spec = OpSpec(op="encode", model=model, tokens=tokens)
            what, desc = model, f"encoder {model} ({tokens} tokens)"
        elif kind == "search":
            index, k = _str(op, "index"), int(_num(op, "k", 10.0))
            dim = int(_num(op, "dim", 384.0))
            n = int(_num(op, "index_docs", DEFAULT_INDEX_DOCS))
            if "index_docs" not in op.attributes:
                self._assume(f"vector index '{index}' holds {n:,} vectors of dim {dim}")
            spec = OpSpec(op="ann_search", n=n, dim=dim, k=k)
            what, desc = index, f"vector search in '{index}' (top {k})"
        elif kind == "vocode":
            seconds = max(_num(op, "tokens", 1.0) / CODEC_FRAMES_PER_S, 0.1)
            self._assume(f"vocoder: {CODEC_FRAMES_PER_S:g} codec frames per second of audio")
            spec = OpSpec(op="vocode", model=model, audio_seconds=seconds)
            what, desc = model, f"vocoder of {model} ({seconds:.1f} s of audio)"
        else:
            tool = _str(op, "tool")
            spec = OpSpec(op="py_call", cpu_seconds=_num(op, "latency_ms", 1.0) / 1e3)
            what, desc = tool, f"tool {tool}"
        name = self._name(kind, what, loc)
        stage = StageWork(name=name, kind=kind, description=desc, spec=spec, visits=visits, loc=loc, ops=[op],
                          concurrency=visits / serial if serial > 0 else 1.0, serial_p95=serial95, serial_p50=serial50,
                          work_p95=_stretch(op), work_cs2=spread_cs2(_stretch(op)), loop=at.loop,
                          per_pass=at.per_pass)
        if kind == "decode":
            stage.steps = max(1.0, _num(op, "output_tokens", 1.0))
            source = op.operands[0].owner if op.operands else None
            stage.pair = self.made.get(source) if isinstance(source, Operation) else None
        if kind == "tool":
            stage.tool_latency_s = _num(op, "latency_ms", 1.0) / 1e3
            stage.tool_cpu = max(_num(op, "cpu", 1.0), 0.01)
        self.stages[name] = stage
        self.made[op] = name
        op.attributes.setdefault("stage", StringAttr(name))   # the placed module maps stages to pools
        return stage


# The figure whose p95 stretches each stage's service time (encoders and searches do fixed-size work).
_P95_FIGURE = {"op.decode": "output_tokens", "op.prefill": "prompt_tokens", "op.py_call": "latency_ms",
               "op.vocode": "tokens"}


def _stretch(op: Operation) -> float:
    """p95 over mean of the op's work figure (1 when it has none): a long request's service time ratio."""
    figure = _P95_FIGURE.get(op.name)
    if figure is None:
        return 1.0
    mean = _num(op, figure, 0.0)
    return max(_num(op, f"{figure}_p95", mean) / mean, 1.0) if mean > 0 else 1.0


Z95 = 1.6449
"""The standard normal's 0.95 quantile: a figure's p95 reads as mean + Z95 x std (as plait.Dist.normal draws)."""


def spread_cs2(p95_over_mean: float) -> float:
    """Squared coefficient of variation of a work figure given its p95 over its mean (normal reading)."""
    return ((max(p95_over_mean, 1.0) - 1.0) / Z95) ** 2


def arm_p95(runs: float, p: float, q: float = 0.95) -> float:
    """Times a branch arm of probability `p` runs, at the q quantile, in `runs` passes of its branch (loop
    iterations at their p95): the binomial's quantile over ceil(runs) passes, at most `runs`. A request on the
    p95 clock takes an arm whenever that arm's share reaches the tail (one pass: every arm with p > 1 - q),
    not its expected share: in react's loop the search arm (p 0.55) runs 4 times of 4, not 2.1."""
    from scipy.stats import binom

    n = math.ceil(runs - 1e-9)
    if n <= 0 or p <= 0:
        return 0.0
    return min(runs, float(binom.ppf(q, n, min(p, 1.0))))


def arm_p50(runs: float, p: float) -> float:
    """Times a branch arm of probability `p` runs for the median request, over `runs` passes of its branch (loop
    iterations at their mean): the binomial median over the nearest whole number of passes, at most `runs`.
    One pass: 1 when p > 0.5, 0 below (an arm most requests skip is not on the median request's path: triage's
    30 % research arm), and p itself at 0.5, where the median lies between the arms (a tie of the binomial's
    CDF at 0.5 reads as the midpoint of the two counts)."""
    from scipy.stats import binom

    n = max(1, math.floor(runs + 0.5))
    if runs <= 0 or p <= 0:
        return 0.0
    p = min(p, 1.0)
    k = float(binom.ppf(0.5, n, p))
    if abs(float(binom.cdf(k, n, p)) - 0.5) < 1e-12:
        k += 0.5
    return min(runs, k)


def entry_function(module: ModuleOp, agent: str | None = None) -> str:
    funcs = [f.sym_name.data for f in module.ops if isinstance(f, FuncOp)]
    if not funcs:
        raise StageError("the module has no func.func.\nTo fix: emit the agent before planning it.")
    if agent is not None and agent in funcs:
        return agent
    return funcs[0]


def extract_stages(module: ModuleOp, catalog: Catalog, agent: str | None = None) -> StageGraph:
    """Stages of the lowered `module` (entry: the function named `agent`, else the first).

    Tags every op it groups with a `stage` attribute (the first call site wins where a function is
    called from several), which `plait.ir.place.PlacePass` maps to pools.
    """
    walker = _Walker(module, catalog)
    entry = walker.funcs[entry_function(module, agent)]
    walker.walk(entry.sym_name.data, [frozenset() for _ in entry.body.block.args], 1.0, 1.0, 1.0, 1.0)
    if not walker.stages:
        raise StageError("the agent has no operator to place (no model call, search or tool).\n"
                         "To fix: plan an agent that calls plait.llm, plait.embed, plait.retrieve or a tool.")
    edges = [StageEdge(src, dst, b) for (src, dst), b in walker.edges.items() if src != dst]
    return StageGraph(list(walker.stages.values()), edges, walker.assumptions)
