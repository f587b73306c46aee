"""The tracer: symbolic values (Sym), scopes that build one graph or region each, and the rules they enforce."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, NoReturn

from plait.sdk.errors import TraceError
from plait.sdk.estimate import node_tokens
from plait.sdk.graph import AgentGraph, AttrValue, Node, NodeKind, Param
from plait.sdk.types import ValueType, accepts
from plait.sdk.where import here, loc, source_line, user_frame

DOCS = "See docs/tracing.md#limitations-of-tracing"


class Sym:
    """A symbolic value: the result of one traced step, known only at run time (a torch.fx Proxy).

    Pass it to other steps. Python control flow on it (`if`, `while`, `for`, `len`, `bool`)
    asks the tracer, whose default is to raise a TraceError naming the construct to use.
    """

    __slots__ = ("node", "scope")

    def __init__(self, node: Node, scope: Scope) -> None:
        self.node = node
        self.scope = scope

    @property
    def type(self) -> ValueType:
        """The value's type (text, vec, docs, audio, bool, texts, json)."""
        assert self.node.type is not None
        return self.node.type

    def __repr__(self) -> str:
        # repr for debuggers and pytest; repr used as text in the agent (`%r`, `!r`) is an error.
        caller = sys._getframe(1)
        if caller.f_code.co_filename in self.scope.tracer.user_files:
            self.scope.tracer.python_op(self, "repr() of it as text")
        return f"Sym(%{self.node.name} : {self.node.type})"

    def __str__(self) -> str:
        self.scope.tracer.python_op(self, "str() of it, or `%s` formatting")

    def __bool__(self) -> bool:
        return self.scope.tracer.to_bool(self)

    def __iter__(self) -> Iterator[Any]:
        return self.scope.tracer.iter(self)

    def __len__(self) -> int:
        return self.scope.tracer.len(self)

    def __format__(self, spec: str) -> str:
        self.scope.tracer.python_op(self, "formatting it into a Python string")

    def __getattr__(self, attr: str) -> Any:
        if attr in Sym.__slots__ or (attr.startswith("__") and attr.endswith("__")):
            raise AttributeError(attr)  # Python's protocols probe dunders (copy, pickle, numpy): say "no"
        self.scope.tracer.python_op(self, f"`.{attr}` on it")

    def __setattr__(self, attr: str, value: object) -> None:
        if attr in Sym.__slots__ and not hasattr(self, attr):
            object.__setattr__(self, attr, value)
            return
        self.scope.tracer.python_op(self, f"setting `.{attr}` on it")

    def __hash__(self) -> int:
        self.scope.tracer.python_op(self, "hashing it (a dict key or set member)")

    def __contains__(self, item: object) -> bool:
        self.scope.tracer.python_op(self, "`in` on it")

    def __call__(self, *args: object, **kwargs: object) -> Any:
        self.scope.tracer.python_op(self, "calling it")

    def __index__(self) -> int:
        self.scope.tracer.python_op(self, "using it as an integer")

    def __int__(self) -> int:
        self.scope.tracer.python_op(self, "int() of it")

    def __float__(self) -> float:
        self.scope.tracer.python_op(self, "float() of it")

    def __getitem__(self, key: object) -> Any:
        self.scope.tracer.python_op(self, "indexing it")

    def __setitem__(self, key: object, value: object) -> None:
        self.scope.tracer.python_op(self, "assigning to an index of it")


def _operator(what: str) -> Callable[..., Any]:
    def refuse(self: Sym, *other: object) -> Any:
        self.scope.tracer.python_op(self, what)
    return refuse


# Every operator Python may apply to a value is refused with the tracer's error: none has a
# meaning at trace time, and a silent result (str, a comparison) would lose the dependency.
_OPERATORS = {
    "eq": "comparing it with `==`", "ne": "comparing it with `!=`", "lt": "comparing it with `<` (or max/min)",
    "le": "comparing it with `<=`", "gt": "comparing it with `>` (or max/min)", "ge": "comparing it with `>=`",
    "add": "`+` on it", "radd": "`+` on it", "sub": "`-` on it", "rsub": "`-` on it", "mul": "`*` on it",
    "rmul": "`*` on it", "truediv": "`/` on it", "rtruediv": "`/` on it", "floordiv": "`//` on it",
    "rfloordiv": "`//` on it", "mod": "`%` on it", "rmod": "`%` formatting with it", "pow": "`**` on it",
    "rpow": "`**` on it", "and": "`&` on it", "rand": "`&` on it", "or": "`|` on it", "ror": "`|` on it",
    "xor": "`^` on it", "rxor": "`^` on it", "neg": "`-` on it", "pos": "`+` on it", "abs": "abs() of it",
    "invert": "`~` on it", "round": "round() of it", "reversed": "reversed() of it",
}
for _name, _what in _OPERATORS.items():
    setattr(Sym, f"__{_name}__", _operator(_what))


def describe(sym: Sym) -> str:
    """"`name` is the output of step %x (kind[target], file:line)", naming the user's variable if found."""
    frame = user_frame()
    var = next((k for k, v in (frame.f_locals.items() if frame else ()) if v is sym), None)
    node = sym.node
    what = f"{node.kind}[{node.target}]" if node.target else node.kind
    origin = f"{what}, {node.loc}" if node.loc else what
    subject = f"`{var}`" if var else "the value"
    if node.kind == "input":
        return f"{subject} is parameter %{node.name} ({origin}); its value is only known at run time."
    return f"{subject} is the output of step %{node.name} ({origin}); its value is only known at run time."


class Scope:
    """Builds one graph: the agent, a callee agent, or one region of a loop, branch or map.

    A region may read values of enclosing scopes: each such value becomes a capture, a
    parameter of the region after its own, fed by an operand of the op that owns the region.
    """

    def __init__(self, tracer: Tracer, name: str, parent: Scope | None, owner: str) -> None:
        self.tracer = tracer
        self.parent = parent
        self.owner = owner  # "agent 'x'" or "plait.loop body 'step'", for messages
        self.graph = AgentGraph(name=name)
        self.captures: list[tuple[Sym, Sym]] = []  # (value in parent scope, param here)

    def param(self, name: str, type_: ValueType, target: str, where: str,
              tokens: float | None = None) -> Sym:
        """Add a parameter (an `input` node) and return its value; `tokens` is its expected size."""
        node = Node(name=self.tracer.fresh(name, numbered=False), kind="input", target=target,
                    type=type_, loc=where)
        self.graph.params = [*self.graph.params, Param(name=node.name, type=type_)]
        if tokens is not None:
            self.tracer.known[node.name] = tokens
        return Sym(self.graph.add(node), self)

    def local(self, sym: Sym) -> Sym:
        """`sym` as a value of this scope, capturing it from an enclosing scope if needed."""
        if sym.scope is self:
            return sym
        if self.parent is None or not self._encloses(sym.scope):
            self.tracer.fail(
                f"value %{sym.node.name} cannot be used outside the {sym.scope.owner} that made it",
                f"it is used in {self.owner}.",
                "To fix: return the value from the function that makes it (a loop body, branch arm, "
                "map function or agent) and use the returned value.")
        # Compare in the parent's terms: a value from two scopes up arrives as the parent's capture.
        outer = self.parent.local(sym)
        for captured, inner in self.captures:
            if captured.node is outer.node:
                return inner
        inner = self.param(outer.node.name, outer.type, outer.node.name, sym.node.loc,
                           self.tracer.tokens(outer))
        self.captures.append((outer, inner))
        return inner

    def _encloses(self, other: Scope) -> bool:
        scope = self.parent
        while scope is not None:
            if scope is other:
                return True
            scope = scope.parent
        return False

    def add(self, kind: NodeKind, inputs: list[Sym], type_: ValueType | None, *, base: str = "",
            target: str = "", attrs: dict[str, AttrValue] | None = None,
            regions: dict[str, AgentGraph] | None = None, where: str | None = None) -> Sym:
        """Record a step reading `inputs` (captured as needed) and return its result."""
        names = [self.local(s).node.name for s in inputs]
        node = Node(name=self.tracer.fresh(base or kind, numbered=kind != "output"), kind=kind,
                    target=target, inputs=names, attrs=attrs or {}, type=type_,
                    loc=loc() if where is None else where, regions=regions or {})
        return Sym(self.graph.add(node), self)


class Tracer:
    """Runs agent functions on symbolic values and records each step; one per `plait.trace` call."""

    def __init__(self) -> None:
        self.scopes: list[Scope] = []
        self.agents: list[str] = []
        self._taken: set[str] = set()
        self._counts: dict[str, int] = {}
        self.known: dict[str, float] = {}  # expected tokens of parameters and of sized values
        self.user_files: set[str] = set()  # files of the functions traced (agents, bodies, arms)
        self.def_locs: list[str] = []  # "file.py:line" of each agent being traced, innermost last

    def runs(self, fn: Callable[..., Any]) -> None:
        """Note that the tracer is about to call the user's `fn` (its file is user code)."""
        code = getattr(fn, "__code__", None)
        if code is not None:
            self.user_files.add(code.co_filename)

    def tokens(self, sym: Sym) -> float:
        """Expected size in tokens of `sym`'s value (see plait.sdk.estimate)."""
        if sym.node.name not in self.known:
            self.known[sym.node.name] = node_tokens(sym.scope.graph, sym.node, self.known)
        return self.known[sym.node.name]

    # --- naming and scopes ----------------------------------------------------------------
    def fresh(self, base: str, numbered: bool = True) -> str:
        """A node name unique in the whole trace: `llm_1`, `llm_2`; parameters keep their name."""
        if not numbered and base not in self._taken:
            self._taken.add(base)
            return base
        while True:
            self._counts[base] = self._counts.get(base, 0) + 1
            name = f"{base}_{self._counts[base]}"
            if name not in self._taken:
                self._taken.add(name)
                return name

    @property
    def scope(self) -> Scope:
        """The scope now being built."""
        return self.scopes[-1]

    def new_scope(self, name: str, owner: str, isolated: bool = False) -> Scope:
        """A scope for a region (child of the current one) or, if isolated, a callee agent."""
        return Scope(self, name, None if isolated or not self.scopes else self.scope, owner)

    @contextmanager
    def entering(self, scope: Scope) -> Iterator[Scope]:
        """Make `scope` current while the body runs."""
        self.scopes.append(scope)
        try:
            yield scope
        finally:
            self.scopes.pop()

    # --- values ---------------------------------------------------------------------------
    def value(self, x: object, step: str, slot: str, expected: ValueType) -> Sym:
        """`x` checked to be a symbolic value of a type `expected` accepts, for `step`'s `slot`."""
        if not isinstance(x, Sym):
            self.fail(f"{step}'s {slot} must be a value produced by a step, got {type(x).__name__} {x!r:.40}",
                      f"To fix: pass the {expected} result of an earlier step (or an agent parameter).")
        if not accepts(expected, x.type):
            self.mismatch(x, step, slot, expected)
        return x

    def mismatch(self, x: Sym, step: str, slot: str, expected: ValueType) -> NoReturn:
        """Raise the type-mismatch error for `x` flowing into `step`'s `slot`."""
        self.fail(f"type mismatch between steps: {step}'s {slot} takes {expected}, "
                  f"but %{x.node.name} gives {x.type}",
                  describe(x).split(";")[0] + ".",
                  f"To fix: pass a {expected} value, or convert it with a @plait.tool whose "
                  f"return annotation gives {expected}.")

    # --- errors and hooks -----------------------------------------------------------------
    def fail(self, rule: str, *lines: str, at: str | None = None) -> NoReturn:
        """Raise a TraceError: the rule, the user's place (`at`, else the running user frame), then `lines`."""
        agent = self.agents[-1] if self.agents else ""
        fallback = self.def_locs[-1] if self.def_locs else ""
        place = here(agent, self.user_files or None, fallback) if at is None \
            else (f"agent {agent!r}, " if agent else "") + at
        body = "\n".join(f"  {line}" for line in (place, *lines))
        raise TraceError(f"{rule}\n{body}")

    def to_bool(self, sym: Sym) -> bool:
        """Python asked for the truth value of `sym` (if, while, and/or/not, bool())."""
        line = source_line(user_frame())
        word = line.split(" ", 1)[0].rstrip(":")
        if word in ("if", "elif") or " if " in line:
            self.fail("symbolic values cannot decide a Python `if`", describe(sym),
                      "To fix: choose between sub-graphs with plait.branch(selector, *args, arms=[...], "
                      "p=[...]), where the selector is a @plait.tool. " + DOCS)
        if word == "while":
            self.fail("symbolic values cannot decide a Python `while`", describe(sym),
                      "To fix: use plait.loop(body, init=..., until=<@plait.tool predicate>, "
                      "max_iters=N, expected_iters=M). " + DOCS)
        self.fail("symbolic values have no truth value at trace time (bool(), and, or, not)",
                  describe(sym),
                  "To fix: compute the condition in a @plait.tool returning bool and pass it to "
                  "plait.branch or plait.loop's until=. " + DOCS)

    def iter(self, sym: Sym) -> Iterator[Any]:
        """Python asked to iterate `sym` (for, unpacking, list())."""
        self.fail("symbolic values cannot be iterated by a Python `for` (or unpacked)", describe(sym),
                  "To fix: run a function on each element with plait.map(fn, items, "
                  "expected_len=N). " + DOCS)

    def len(self, sym: Sym) -> int:
        """Python asked for `len(sym)`."""
        self.fail("symbolic values have no len() at trace time", describe(sym),
                  "To fix: give the planner a count with plait.map(..., expected_len=N), or compute "
                  "the length at run time inside a @plait.tool. " + DOCS)

    def python_op(self, sym: Sym, what: str) -> NoReturn:
        """Python tried another operation on `sym` (format, +, [], ==)."""
        self.fail(f"symbolic values cannot be used in Python operations ({what})", describe(sym),
                  "To fix: build text with plait.prompt(TEMPLATE, name=value), and compute on values "
                  "inside a @plait.tool. " + DOCS)


_ACTIVE: ContextVar[Tracer | None] = ContextVar("plait_tracer", default=None)


def active() -> Tracer | None:
    """The tracer of the `plait.trace` call in progress, if any."""
    return _ACTIVE.get()


def require(step: str) -> Tracer:
    """The active tracer, or a TraceError saying `step` only works while tracing."""
    tracer = _ACTIVE.get()
    if tracer is None:
        raise TraceError(f"{step} can only be called while an agent is being traced\n  {here()}\n"
                         "  To fix: call it inside a @plait.agent function and trace that agent with "
                         "plait.trace(agent) or `plait graph FILE:AGENT`.")
    return tracer


@contextmanager
def tracing(tracer: Tracer) -> Iterator[Tracer]:
    """Make `tracer` the active one."""
    token = _ACTIVE.set(tracer)
    try:
        yield tracer
    finally:
        _ACTIVE.reset(token)
