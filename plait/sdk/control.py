"""Control flow with planning figures: plait.loop, plait.branch, plait.map; each owns regions."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from typing import Any

from plait.sdk.decorators import def_loc, def_where
from plait.sdk.dist import Dist
from plait.sdk.graph import AgentGraph, AttrValue, Param
from plait.sdk.steps import planning_figure
from plait.sdk.trace import finish
from plait.sdk.tracer import Scope, Sym, Tracer, require
from plait.sdk.types import ValueType

Figure = float | Dist


def _name(fn: Callable[..., Any]) -> str:
    return str(getattr(fn, "name", None) or getattr(fn, "__name__", type(fn).__name__))


def _param_names(fn: Callable[..., Any], count: int, default: str) -> list[str]:
    try:
        names = list(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        names = []
    return [names[i] if i < len(names) else f"{default}{i}" for i in range(count)]


def _check_callable(tracer: Tracer, fn: object, owner: str, count: int, label: str | None = None) -> None:
    """`fn` must be a function taking `count` positional values; `owner` and `label` name it in messages."""
    if not callable(fn):
        tracer.fail(f"{owner} must be a function, got {type(fn).__name__} {fn!r:.40}",
                    "To fix: pass a function (def, lambda or @plait.tool) taking the values as parameters.")
    try:
        inspect.signature(fn).bind(*range(count))
    except TypeError as err:
        tracer.fail(f"{owner} {label or repr(_name(fn))} cannot take {count} value(s): {err}",
                    "To fix: make the function take exactly the values the construct passes it.",
                    at=def_where(fn) or None)
    except ValueError:
        pass  # a builtin without a signature: calling it will tell


def _region(tracer: Tracer, fn: Callable[..., Any], args: Sequence[Sym], owner: str, default: str,
            then: Callable[[Sym], Sym] | None = None, label: str | None = None) -> tuple[Scope, list[Sym]]:
    """Trace `fn` on fresh parameters (one per value in `args`) in a child scope; return its results.

    `then`, if given, runs in the same scope on the result and adds its value as a second output.
    `label` names the region in messages (default: the function's name).
    """
    _check_callable(tracer, fn, owner, len(args), label and repr(label))
    what = f"{owner} {label!r}" if label else f"{owner} {_name(fn)!r}"
    tracer.runs(fn)
    scope = tracer.new_scope(_name(fn), what)
    names = _param_names(fn, len(args), default)
    with tracer.entering(scope):
        params = [scope.param(n, a.type, n, def_loc(fn) or a.node.loc, tracer.tokens(a))
                  for n, a in zip(names, args, strict=True)]
        outs = _returned(tracer, scope, fn(*params), what, def_where(fn), then)
    return scope, outs


def _returned(tracer: Tracer, scope: Scope, result: object, what: str, where: str,
              then: Callable[[Sym], Sym] | None = None) -> list[Sym]:
    """Record a region's one returned value (and `then`'s value of it) as its output."""
    if isinstance(result, tuple):
        tracer.fail(f"{what} must return one value, got {len(result)}",
                    "To fix: combine values with plait.gather(...) or a @plait.tool.", at=where or None)
    extra = [then(result)] if then is not None and isinstance(result, Sym) else []
    return finish(tracer, scope, (result, *extra), what, at=where)


def loop(body: Callable[[Sym], Sym], init: object, *, until: Callable[[Sym], Sym] | None = None,
         max_iters: int | None = None, expected_iters: Figure | None = None) -> Sym:
    """Repeat `body` on a carried value until the predicate `until` says done (at most `max_iters` times).

    Each iteration computes `value = body(value)` then `done = until(value)`; the loop runs at
    least once. The result is the last value. In the graph, the `loop` node reads the captured
    outer values then `init`; its `body` region has the same parameters and returns (done, value).

    Args:
        body: a function of the carried value returning its next value (same type).
        init: the first carried value.
        until: a @plait.tool (or function) of the new value returning bool: True ends the loop.
        max_iters: required hard cap on iterations.
        expected_iters: iterations the planner should expect (a number or plait.Dist); default max_iters.
    """
    tracer = require("plait.loop")
    if max_iters is None:
        tracer.fail("plait.loop needs max_iters: an unbounded loop cannot be planned",
                    "To fix: add max_iters=N (the hard cap) and expected_iters=M (the typical count).")
    if isinstance(max_iters, bool) or not isinstance(max_iters, int) or not 1 <= max_iters <= 2**63 - 1:
        tracer.fail(f"plait.loop's max_iters must be an integer >= 1, got {max_iters!r}",
                    "To fix: pass max_iters=N.")
    if until is None:
        tracer.fail("plait.loop needs until=<predicate>: what ends the loop at run time",
                    "To fix: pass until=a @plait.tool taking the carried value and returning bool.")
    expected = planning_figure(tracer, "plait.loop", "expected_iters", max_iters if expected_iters is None
                       else expected_iters)
    if not 1 <= expected.mean <= max_iters:
        tracer.fail(f"plait.loop's expected_iters ({expected}) must lie between 1 and max_iters ({max_iters})",
                    "To fix: lower expected_iters or raise max_iters.")
    start = tracer.value(init, "plait.loop", "init", "json")
    _check_callable(tracer, until, "plait.loop's until", 1)
    tracer.runs(until)
    predicate = until

    def check_done(new: Sym) -> Sym:
        if new.type != start.type:
            tracer.fail(f"type mismatch: plait.loop's body returns {new.type}, but the carried value is "
                        f"{start.type}", "To fix: return a value of the same type as init.")
        done = predicate(new)
        if not isinstance(done, Sym) or done.type != "bool":
            got = done.type if isinstance(done, Sym) else type(done).__name__
            tracer.fail(f"plait.loop's until must return bool, got {got}",
                        "To fix: annotate the predicate tool's return type as bool.")
        return done

    scope, (new, done) = _region(tracer, body, [start], "plait.loop body", "value", then=check_done)
    graph = scope.graph
    graph.params = graph.params[1:] + graph.params[:1]  # captures first, then the carried value
    out = graph.output
    graph.remove_node(out.name)
    graph.add(out.model_copy(update={"inputs": [done.node.name, new.node.name]}))
    attrs: dict[str, AttrValue] = {"max_iters": max_iters, "expected_iters": expected,
                                   "until": done.node.name}
    return tracer.scope.add("loop", [*(o for o, _ in scope.captures), start], start.type,
                            target=_name(body), attrs=attrs, regions={"body": graph})


def branch(selector: object, *args: object, arms: Sequence[Callable[..., Any]] | dict[str, Callable[..., Any]],
           p: Sequence[float] | None = None) -> Sym:
    """Run one of several arms on `args`, chosen at run time by `selector`.

    Args:
        selector: a traced value, or a @plait.tool applied to `args` to get one. A text
            selector names the arm to run; a bool selector picks arms[0] when true, arms[1] when false.
        args: values passed to the chosen arm.
        arms: functions (named by __name__, or by the dict's keys).
        p: probability of each arm, for planning; sums to 1 (default uniform).
    """
    tracer = require("plait.branch")
    pairs = list(arms.items()) if isinstance(arms, dict) else [(_name(f), f) for f in arms]
    names = [k for k, _ in pairs]
    if len(pairs) < 2 or len(set(names)) != len(names):
        tracer.fail(f"plait.branch needs two or more arms with distinct names, got {names}",
                    "To fix: pass arms=[fn_a, fn_b] (distinct function names) or arms={'a': fn_a, 'b': fn_b}.")
    probs = [1 / len(pairs)] * len(pairs) if p is None else list(p)
    if len(probs) != len(pairs) or any(not 0 <= x <= 1 for x in probs) or not math.isclose(sum(probs), 1,
                                                                                             abs_tol=1e-6):
        tracer.fail(f"plait.branch's p must give one probability in [0, 1] per arm, summing to 1; "
                    f"got {probs} for arms {names}", f"To fix: pass p=[...] with {len(pairs)} numbers summing to 1.")
    values = [tracer.value(a, "plait.branch", f"argument {i}", "json") for i, a in enumerate(args)]
    sel = selector(*values) if callable(selector) and not isinstance(selector, Sym) else selector
    sel = tracer.value(sel, "plait.branch", "selector", "json")
    if sel.type == "bool" and len(pairs) != 2:
        tracer.fail(f"a bool selector picks between two arms, but plait.branch got {len(pairs)}",
                    "To fix: return the arm's name (str) from the selector tool.")
    if sel.type not in ("bool", "text"):
        tracer.fail(f"plait.branch's selector must be text (an arm name) or bool, got {sel.type}",
                    "To fix: annotate the selector tool's return type as str or bool.")
    regions: list[tuple[str, Scope, Sym]] = []
    for key, fn in pairs:
        scope, (out,) = _region(tracer, fn, values, "plait.branch arm", "arg", label=key)
        regions.append((key, scope, out))
    types = {out.type for _, _, out in regions}
    if len(types) > 1:
        detail = ", ".join(f"{k} returns {o.type}" for k, _, o in regions)
        tracer.fail(f"type mismatch: plait.branch's arms return different types ({detail})",
                    "To fix: make every arm return the same type.")
    captured = _unify_captures(tracer, [s for _, s, _ in regions], len(values))
    attrs: dict[str, AttrValue] = {"arms": names, "p": [float(x) for x in probs]}
    return tracer.scope.add("branch", [sel, *values, *captured], regions[0][2].type,
                            attrs=attrs, regions={k: s.graph for k, s, _ in regions})


def _unify_captures(tracer: Tracer, scopes: list[Scope], own: int) -> list[Sym]:
    """Give every arm the same parameters: its own, then the union of all arms' captures, in order."""
    union: list[Sym] = []
    for scope in scopes:
        for outer, _ in scope.captures:
            if all(u.node is not outer.node for u in union):
                union.append(outer)
    for scope in scopes:
        with tracer.entering(scope):
            params = {outer.node.name: inner for outer, inner in scope.captures}
            for outer in union:
                if outer.node.name not in params:
                    params[outer.node.name] = scope.local(outer)
        graph: AgentGraph = scope.graph
        graph.params = graph.params[:own] + [Param(name=params[o.node.name].node.name, type=o.type)
                                             for o in union]
        _move_output_last(graph)
    return union


def _move_output_last(graph: AgentGraph) -> None:
    out = graph.output
    graph.remove_node(out.name)
    graph.add(out)


def map(fn: Callable[[Sym], Sym], items: object, *, expected_len: Figure | None = None) -> Sym:
    """Run `fn` on every element of `items` (texts or docs), in parallel; the results as a list.

    Args:
        fn: a function of one text element.
        items: texts or docs.
        expected_len: elements the planner should expect; defaults to k for plait.retrieve's
            docs and to the count for plait.gather's list.
    Returns:
        texts when `fn` returns text, else json.
    """
    tracer = require("plait.map")
    seq = tracer.value(items, "plait.map", "items", "texts")
    if expected_len is None:
        if seq.node.kind == "retrieve":
            expected_len = float(seq.node.attrs["k"])  # type: ignore[arg-type]
        elif seq.node.kind == "gather":
            expected_len = len(seq.node.inputs)
        else:
            tracer.fail("plait.map needs expected_len: the length of this list is unknown until run time",
                        f"%{seq.node.name} is a {seq.node.kind} result.",
                        "To fix: pass expected_len=N (a number or plait.Dist).")
    size = planning_figure(tracer, "plait.map", "expected_len", expected_len)
    if size.mean <= 0:
        tracer.fail(f"plait.map's expected_len must be > 0, got {size}: a map over no elements never runs",
                    "To fix: pass the typical number of elements, or remove the map.")
    per_item = tracer.tokens(seq) / max(size.mean, 1.0)
    _check_callable(tracer, fn, "plait.map function", 1)
    tracer.runs(fn)
    what = f"plait.map function {_name(fn)!r}"
    scope = tracer.new_scope(_name(fn), what)
    (pname,) = _param_names(fn, 1, "item")
    with tracer.entering(scope):
        param = scope.param(pname, "text", pname, def_loc(fn) or seq.node.loc, per_item)
        outs = _returned(tracer, scope, fn(param), what, def_where(fn))
    result: ValueType = "texts" if outs[0].type == "text" else "json"
    attrs: dict[str, AttrValue] = {"expected_len": size}
    return tracer.scope.add("map", [seq, *(o for o, _ in scope.captures)], result, target=_name(fn),
                            attrs=attrs, regions={"body": scope.graph})
