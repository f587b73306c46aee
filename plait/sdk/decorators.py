"""@plait.tool and @plait.agent: plain functions that record a node when called during tracing."""

from __future__ import annotations

import functools
import inspect
import linecache
import os
from collections.abc import Callable
from typing import Any, overload

from plait.sdk.dist import Dist
from plait.sdk.errors import TraceError
from plait.sdk.graph import AttrValue, Scalar
from plait.sdk.sla import SLA
from plait.sdk.tracer import Sym, active
from plait.sdk.types import ValueType, accepts, hints, type_of_annotation
from plait.sdk.where import display_path

DEFAULT_TOOL_OUTPUT_TOKENS = 64
"""Assumed size of a tool's text or json result, tokens, when the decorator gives none."""
DEFAULT_TOOL_TIMEOUT_S = 30.0
"""How long a worker waits for one call of a tool, seconds, when the decorator gives no timeout_s."""


def def_loc(fn: Callable[..., Any]) -> str:
    """"file.py:line" of `fn`'s definition."""
    code = getattr(fn, "__code__", None)
    return "" if code is None else f"{os.path.basename(code.co_filename)}:{code.co_firstlineno}"


def def_where(fn: Callable[..., Any]) -> str:
    """A message line's place for `fn`'s definition: `react.py:14:   def step(state):` ('' if unknown)."""
    code = getattr(fn, "__code__", None)
    if code is None:
        return ""
    number = code.co_firstlineno
    for offset in range(20):  # past the decorators, to the `def` line
        text = linecache.getline(code.co_filename, code.co_firstlineno + offset).strip()
        if text.startswith(("def ", "async def ")):
            number += offset
            break
    line = linecache.getline(code.co_filename, number).strip()
    return f"{display_path(code.co_filename)}:{number}:" + (f"   {line}" if line else "")


def _signature(fn: Callable[..., Any], what: str) -> tuple[inspect.Signature, dict[str, ValueType], ValueType]:
    """`fn`'s signature, the value type of each parameter, and of its result."""
    sig = inspect.signature(fn)
    for p in sig.parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            code = fn.__code__
            raise TraceError(f"a {what} must take named parameters, not *{p.name}\n"
                             f"  {display_path(code.co_filename)}:{code.co_firstlineno}: def {fn.__name__}\n"
                             "  To fix: list each parameter by name.")
    ann = hints(fn)
    types: dict[str, ValueType] = {name: type_of_annotation(ann.get(name, str if what == "@plait.agent"
                                                                    else Any))
                                   for name in sig.parameters}
    result = type_of_annotation(ann["return"]) if "return" in ann else "json"
    return sig, types, result


class Tool:
    """A Python function the agent calls; traced as one `tool` node, run as plain Python otherwise."""

    def __init__(self, fn: Callable[..., Any], latency_ms: float | Dist, cpu: float,
                 output_tokens: float | Dist | None, timeout_s: float | None = None, idempotent: bool = True) -> None:
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.name = fn.__name__
        self.signature, self.param_types, self.result_type = _signature(fn, "@plait.tool")
        where = f"{display_path(fn.__code__.co_filename)}:{fn.__code__.co_firstlineno}"
        try:
            self.latency_ms = Dist.of(latency_ms)
            size = DEFAULT_TOOL_OUTPUT_TOKENS if output_tokens is None else output_tokens
            self.output_tokens = Dist.of(size if self.result_type in ("text", "texts", "json") else 0)
        except (ValueError, TypeError) as err:
            detail = str(err).splitlines()[0]
            raise TraceError(f"@plait.tool {self.name}'s figures are not valid\n  {where}\n  {detail}\n"
                             "  To fix: give latency_ms and output_tokens as numbers >= 0 or plait.Dist."
                             ) from None
        if isinstance(cpu, bool) or not isinstance(cpu, int | float) or cpu <= 0:
            raise TraceError(f"@plait.tool {self.name}'s cpu must be a number of cores > 0, got {cpu!r}\n"
                             f"  {where}\n  To fix: @plait.tool(cpu=1.0).")
        self.cpu = float(cpu)
        timeout = DEFAULT_TOOL_TIMEOUT_S if timeout_s is None else timeout_s
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise TraceError(f"@plait.tool {self.name}'s timeout_s must be a number of seconds > 0, got "
                             f"{timeout_s!r}\n  {where}\n  To fix: @plait.tool(timeout_s=10).")
        self.timeout_s = float(timeout)   # read by the worker's python kernel, not a planning figure
        if not isinstance(idempotent, bool):
            raise TraceError(f"@plait.tool {self.name}'s idempotent must be True or False, got {idempotent!r}\n"
                             f"  {where}\n  To fix: @plait.tool(idempotent=False) for a tool that must not run twice.")
        self.idempotent = idempotent   # read by the driver: False: never run again after its worker died

    def __repr__(self) -> str:
        return f"<plait.tool {self.name}>"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        tracer = active()
        if tracer is None:
            return self.fn(*args, **kwargs)
        if self.name == "<lambda>":   # a worker imports each tool by module and name; a lambda has neither
            tracer.fail("a tool must be a named function: a worker process imports each tool by module and "
                        f"qualified name, and a lambda has none ({def_loc(self.fn)})",
                        "To fix: define it with `def NAME(...)` at the top level of its module and decorate it "
                        "@plait.tool.")
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as err:
            tracer.fail(f"tool {self.name} was called with the wrong arguments: {err}",
                        f"To fix: call it as {self.name}{self.signature}.")
        bound.apply_defaults()
        syms: list[Sym] = []
        names: list[str] = []
        constants: dict[str, Scalar] = {}
        for pname, value in bound.arguments.items():
            expected = self.param_types[pname]
            if isinstance(value, Sym):
                if not accepts(expected, value.type):
                    tracer.mismatch(value, f"tool {self.name}", f"parameter {pname!r}", expected)
                syms.append(value)
                names.append(pname)
            elif isinstance(value, str | int | float | bool):
                constants[pname] = value
            else:
                tracer.fail(f"tool {self.name}'s argument {pname!r} must be a traced value or a "
                            f"str/int/float/bool constant, got {type(value).__name__}",
                            "To fix: pass values produced by steps; build other constants inside the tool.")
        attrs: dict[str, AttrValue] = {"latency_ms": self.latency_ms, "cpu": self.cpu,
                                       "output_tokens": self.output_tokens, "params": names,
                                       "constants": constants, "module": self.fn.__module__}
        if not self.idempotent:   # only when set: the graphs (and plan hashes) of other tools stay as they were
            attrs["idempotent"] = False
        return tracer.scope.add("tool", syms, self.result_type, base=self.name, target=self.name, attrs=attrs)


@overload
def tool(fn: Callable[..., Any], /) -> Tool: ...
@overload
def tool(*, latency_ms: float | Dist = 1.0, cpu: float = 1.0, output_tokens: float | Dist | None = None,
         timeout_s: float | None = None, idempotent: bool = True) -> Callable[[Callable[..., Any]], Tool]: ...
def tool(fn: Callable[..., Any] | None = None, /, *, latency_ms: float | Dist = 1.0, cpu: float = 1.0,
         output_tokens: float | Dist | None = None, timeout_s: float | None = None,
         idempotent: bool = True) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Declare a Python function as a tool: a CPU step the runtime executes.

    Args:
        latency_ms: expected run time of one call, ms (a number or plait.Dist).
        cpu: CPU cores one call needs.
        output_tokens: expected size of a text/json result, tokens (64 when None).
        timeout_s: how long a worker lets one call run before it fails the request, seconds (30 when None).
        idempotent: whether running it twice for one request is safe (default True). When its worker dies, the
            runtime re-runs the steps that were lost; a tool marked False is never re-run: a request that would
            need it again fails with an error naming the tool (docs/runtime.md, "When a worker dies").

    Parameter and return annotations give the value types: str -> text, bool -> bool,
    bytes -> audio, list[str] -> texts, anything else -> json.
    """
    if fn is not None:
        return Tool(fn, latency_ms, cpu, output_tokens, timeout_s, idempotent)
    return lambda f: Tool(f, latency_ms, cpu, output_tokens, timeout_s, idempotent)


class Agent:
    """An agent: traced by plait.trace into an AgentGraph; calling it inside another agent records a `call`."""

    def __init__(self, fn: Callable[..., Any], sla: SLA | None, qps: float | None) -> None:
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.name = fn.__name__
        self.signature, self.param_types, self.result_type = _signature(fn, "@plait.agent")
        self.declared_result = "return" in hints(fn)
        where = f"{display_path(fn.__code__.co_filename)}:{fn.__code__.co_firstlineno}"
        if sla is not None and not isinstance(sla, SLA):
            raise TraceError(f"@plait.agent {self.name}'s sla must be a plait.SLA, got {sla!r:.40}\n"
                             f"  {where}\n  To fix: @plait.agent(sla=plait.SLA(p95_ms=2000)).")
        if qps is not None and (isinstance(qps, bool) or not isinstance(qps, int | float) or qps <= 0):
            raise TraceError(f"@plait.agent {self.name}'s qps must be a rate > 0 (requests/s), got {qps!r}\n"
                             f"  {where}\n  To fix: @plait.agent(qps=5).")
        self.sla = sla
        self.qps = None if qps is None else float(qps)

    def __repr__(self) -> str:
        return f"<plait.agent {self.name}>"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if active() is None:
            return self.fn(*args, **kwargs)
        from plait.sdk.trace import call_agent

        return call_agent(self, args, kwargs)


@overload
def agent(fn: Callable[..., Any], /) -> Agent: ...
@overload
def agent(*, sla: SLA | None = None, qps: float | None = None) -> Callable[[Callable[..., Any]], Agent]: ...
def agent(fn: Callable[..., Any] | None = None, /, *, sla: SLA | None = None,
          qps: float | None = None) -> Agent | Callable[[Callable[..., Any]], Agent]:
    """Declare an agent: a function of symbolic values built from plait steps, tools and agents.

    Args:
        sla: the latency targets a request must meet (plait.SLA).
        qps: the expected request rate, requests per second.

    Parameter annotations give input types (unannotated parameters are text).
    """
    if fn is not None:
        return Agent(fn, sla, qps)
    return lambda f: Agent(f, sla, qps)
