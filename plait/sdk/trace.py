"""plait.trace: run an agent on symbolic values and return its AgentGraph; agent-to-agent calls."""

from __future__ import annotations

import inspect
import os
import traceback
from typing import Any

from plait.sdk.decorators import Agent, def_loc, def_where
from plait.sdk.errors import PlaitError, TraceError
from plait.sdk.graph import AgentGraph
from plait.sdk.sla import SLA
from plait.sdk.tracer import Scope, Sym, Tracer, active, tracing
from plait.sdk.types import accepts
from plait.sdk.where import PLAIT_DIR, display_path, here


def finish(tracer: Tracer, scope: Scope, result: object, what: str, at: str) -> list[Sym]:
    """Record `scope`'s output node from a function's return value (one value or a tuple).

    `at` ("file.py:line", the function's definition) places errors: the function has returned.
    """
    values = list(result) if isinstance(result, tuple) else [result]
    if not values or not all(isinstance(v, Sym) for v in values):
        bad = next((v for v in values if not isinstance(v, Sym)), None)
        tracer.fail(f"{what} must return a value produced by a step, got {type(bad).__name__} {bad!r:.40}",
                    "To fix: return the result of a plait step, tool or agent (constants belong in "
                    "a prompt template or a tool).", at=at)
    syms = [v for v in values if isinstance(v, Sym)]
    scope.add("output", syms, None, where="")
    return syms


def _body(tracer: Tracer, agent: Agent, scope: Scope, args: list[Sym]) -> Sym:
    tracer.runs(agent.fn)
    with tracer.entering(scope):
        result = agent.fn(*args)
        syms = finish(tracer, scope, result, f"agent {agent.name!r}", at=def_where(agent.fn))
    # the body has returned: name the agent's definition, not whoever called trace()
    if len(syms) != 1:
        tracer.fail(f"agent {agent.name!r} must return one value, got {len(syms)}",
                    "To fix: combine the values with plait.gather(...) or a @plait.tool.", at=def_where(agent.fn))
    if agent.declared_result and not accepts(agent.result_type, syms[0].type):
        tracer.fail(f"type mismatch: agent {agent.name!r} is annotated to return {agent.result_type}, "
                    f"but returns %{syms[0].node.name} of type {syms[0].type}",
                    "To fix: correct the return annotation, or return a value of that type.",
                    at=def_where(agent.fn))
    return syms[0]


def _enter_agent(tracer: Tracer, agent: Agent) -> None:
    if agent.name in tracer.agents:
        tracer.fail(f"agent {agent.name!r} calls itself; recursion cannot be traced",
                    "To fix: repeat work with plait.loop(body, init=..., until=..., max_iters=N).")
    tracer.agents.append(agent.name)
    tracer.def_locs.append(def_where(agent.fn))


def _leave_agent(tracer: Tracer) -> None:
    tracer.agents.pop()
    tracer.def_locs.pop()


def _user_exception(tracer: Tracer, agent: Agent, err: BaseException) -> TraceError:
    """A TraceError for an exception the user's own code raised while being traced, at its line."""
    frames = traceback.extract_tb(err.__traceback__)
    mine = [f for f in frames if f.filename in tracer.user_files] or \
        [f for f in frames if not os.path.abspath(f.filename).startswith(PLAIT_DIR)]
    place = f"{display_path(mine[-1].filename)}:{mine[-1].lineno}:   {mine[-1].line}" if mine \
        else def_where(agent.fn)
    what = {SystemExit: "called exit()", KeyboardInterrupt: "raised KeyboardInterrupt"}.get(
        type(err), f"raised {type(err).__name__}")
    detail = str(err).splitlines()[0] if str(err) else ""
    return TraceError(f"agent {agent.name!r} {what} while being traced" + (f": {detail}" if detail else "")
                      + f"\n  {place}\n  Tracing runs the agent's Python once on symbolic values, before any "
                      "request: code that needs real values must run inside a @plait.tool.\n"
                      "  To fix: correct the code at that line, or move it into a @plait.tool.")


def trace(agent: Agent, sla: SLA | None = None, qps: float | None = None) -> AgentGraph:
    """Trace `agent` into an AgentGraph.

    Args:
        agent: a @plait.agent function.
        sla: overrides the decorator's SLA.
        qps: overrides the decorator's request rate, requests per second.
    Returns:
        the graph: one `input` node per parameter, one node per step, one `output` node.
    """
    if not isinstance(agent, Agent):
        raise TraceError(f"plait.trace needs a @plait.agent function, got {agent!r:.60}\n  {here()}\n"
                         "  To fix: decorate the function with @plait.agent.")
    if active() is not None:
        raise TraceError(f"plait.trace cannot run inside another trace\n  {here()}\n"
                         "  To fix: call the agent directly to record an agent-to-agent call.")
    if qps is not None and qps <= 0:
        raise TraceError(f"the request rate must be > 0 requests/s, got {qps}\n  To fix: pass qps > 0.")
    tracer = Tracer()
    scope = tracer.new_scope(agent.name, f"agent {agent.name!r}", isolated=True)
    with tracing(tracer):
        _enter_agent(tracer, agent)
        where = def_loc(agent.fn)
        params = [scope.param(p, agent.param_types[p], p, where) for p in agent.signature.parameters]
        try:
            _body(tracer, agent, scope, params)
        except PlaitError:
            raise
        except (Exception, SystemExit, KeyboardInterrupt) as err:
            raise _user_exception(tracer, agent, err) from err
    graph = scope.graph
    graph.graph.update(sla=sla or agent.sla, qps=agent.qps if qps is None else float(qps),
                       source=inspect.getsourcefile(agent.fn))
    graph.lint()
    return graph


def call_agent(agent: Agent, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Sym:
    """Record a `call` node: `agent` called from the agent being traced, its graph as region `callee`."""
    tracer = active()
    assert tracer is not None
    try:
        bound = agent.signature.bind(*args, **kwargs)
    except TypeError as err:
        tracer.fail(f"agent {agent.name!r} was called with the wrong arguments: {err}",
                    f"To fix: call it as {agent.name}{agent.signature}.")
    values = [tracer.value(v, f"agent {agent.name}", f"parameter {k!r}", agent.param_types[k])
              for k, v in bound.arguments.items()]
    caller = tracer.scope
    _enter_agent(tracer, agent)
    try:
        scope = tracer.new_scope(agent.name, f"agent {agent.name!r}", isolated=True)
        where = def_loc(agent.fn)
        params = [scope.param(k, agent.param_types[k], k, where, tracer.tokens(v))
                  for k, v in zip(bound.arguments, values, strict=True)]
        result = _body(tracer, agent, scope, params)
    finally:
        _leave_agent(tracer)
    scope.graph.graph.update(sla=agent.sla, qps=agent.qps, source=inspect.getsourcefile(agent.fn))
    return caller.add("call", values, result.type, base=agent.name, target=agent.name,
                      regions={"callee": scope.graph})
