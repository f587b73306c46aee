"""The python kernel (op.py_call): the user's own tool or predicate, imported by module and qualified name in
the worker process, and called with the run-time values under the tool's declared timeout.

A worker imports each tool, so a tool must be a module-level function: a lambda or a function defined inside
another function (a closure) has no importable name and is refused, naming the function and the fix.
"""

from __future__ import annotations

import functools
import importlib
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plait.codegen.errors import CodegenError
from plait.codegen.program import Step
from plait.ir.location import user_loc
from plait.sdk.decorators import DEFAULT_TOOL_TIMEOUT_S, Tool, def_loc


class ToolError(CodegenError):
    """A tool a worker cannot import (a lambda, a closure, a missing name)."""


class ToolTimeoutError(TimeoutError):
    """A tool call ran past its declared timeout."""


@dataclass(frozen=True)
class ToolRef:
    """Where a worker imports a tool from: a module (dotted name, or a .py file's path) and a qualified name."""

    module: str
    qualname: str


def _importable(fn: Callable[..., Any], name: str) -> None:
    qualname = getattr(fn, "__qualname__", name)
    if "<lambda>" in qualname:
        kind, fix = "a lambda", "define it with `def` at the top level of its module, decorated @plait.tool"
    elif "<locals>" in qualname:
        kind, fix = (f"defined inside {qualname.split('.<locals>')[0]}() (a closure)",
                     "move it to the top level of its module and pass what it captured as arguments")
    else:
        return
    raise ToolError(f"tool {name!r} ({def_loc(fn) or 'unknown file'}) is {kind}, which a worker process cannot "
                    f"import by module and qualified name\n  To fix: {fix}.")


def tool_ref(tool: Tool | Callable[..., Any]) -> ToolRef:
    """The ToolRef of a tool; ToolError naming it when it is a lambda or a closure."""
    fn = tool.fn if isinstance(tool, Tool) else tool
    name = tool.name if isinstance(tool, Tool) else getattr(fn, "__name__", repr(fn))
    _importable(fn, name)
    return ToolRef(fn.__module__, fn.__qualname__)


def _namespace(module: str) -> object:
    """A dotted module, or a .py file run as the CLI runs an agent file (plait.sdk.loader)."""
    if module.endswith(".py"):
        from types import SimpleNamespace

        from plait.sdk.loader import load_module

        return SimpleNamespace(**load_module(Path(module)))
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ToolError(f"cannot import module {module!r} for a tool: {err}\n  To fix: install the module on the "
                        "worker, or give the agent file's path.") from None


def resolve_tool(ref: ToolRef) -> tuple[Callable[..., Any], float, str]:
    """(the function, its timeout in seconds, its name) for `ref`; ToolError saying why it cannot be imported."""
    if "<lambda>" in ref.qualname or "<locals>" in ref.qualname:
        raise ToolError(f"tool {ref.qualname!r} of {ref.module} is a lambda or a closure, which a worker cannot "
                        "import\n  To fix: define it with `def` at the top level of its module.")
    found: object = _namespace(ref.module)
    for part in ref.qualname.split("."):
        if not hasattr(found, part):
            raise ToolError(f"tool {ref.qualname!r} is not defined at the top level of {ref.module}: a worker "
                            "imports tools by module and qualified name, so a tool defined inside a function "
                            "(a closure) or under another name cannot be found\n  To fix: define it with `def "
                            f"{ref.qualname.rsplit('.', 1)[-1]}(...)` at the top level of {ref.module}.")
        found = getattr(found, part)
    if isinstance(found, Tool):
        _importable(found.fn, found.name)
        return found.fn, found.timeout_s, found.name
    if callable(found):
        _importable(found, ref.qualname)
        return found, DEFAULT_TOOL_TIMEOUT_S, ref.qualname
    raise ToolError(f"{ref.qualname!r} in {ref.module} is a {type(found).__name__}, not a function\n"
                    "  To fix: name a function decorated @plait.tool.")


class _ToolThread:
    """A daemon thread that runs calls handed to it one at a time, then offers itself for the next one."""

    def __init__(self, idle: list[_ToolThread], lock: threading.Lock) -> None:
        self.jobs: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]] = queue.SimpleQueue()
        self.idle, self.lock = idle, lock
        threading.Thread(target=self._serve, name="plait-tool", daemon=True).start()

    def _serve(self) -> None:
        while True:
            call, future = self.jobs.get()
            try:
                future.set_result(call())
            except BaseException as err:   # re-raised in the caller's thread
                future.set_exception(err)
            del call, future   # the arguments (a tensor a worker may reuse once released) are not held while idle
            with self.lock:   # free again (a call that timed out frees it only when it returns, if ever)
                self.idle.append(self)


_IDLE: list[_ToolThread] = []
SLOW_AFTER_S = 0.002
_IDLE_LOCK = threading.Lock()


def call_with_timeout(fn: Callable[..., Any], args: tuple[Any, ...], timeout_s: float, name: str,
                      on_slow: Callable[[], None] | None = None) -> Any:
    """fn(*args), or ToolTimeoutError naming the tool and its timeout when it runs longer.

    `on_slow` is called (in the caller's thread) once the call has run SLOW_AFTER_S without returning: a
    worker acknowledges a tool call there, so a fast call's answer is its only message.

    The call runs in a daemon thread: Python cannot stop a running function, so a timed-out call is left
    to finish in the background while the request fails (a worker that accumulates them is restarted).
    Threads are reused (starting one costs ~0.1 ms, more than a no-op tool's whole hop); one still running a
    timed-out call is not handed another.
    """
    with _IDLE_LOCK:
        runner = _IDLE.pop() if _IDLE else None
    if runner is None:
        runner = _ToolThread(_IDLE, _IDLE_LOCK)
    future: Future[Any] = Future()
    runner.jobs.put((functools.partial(fn, *args), future))
    try:
        if on_slow is not None:
            try:
                return future.result(min(SLOW_AFTER_S, timeout_s))
            except FutureTimeout:
                if future.done():
                    raise
                on_slow()
        return future.result(timeout_s)
    except FutureTimeout:
        if future.done():   # the tool raised a TimeoutError of its own
            raise
        raise ToolTimeoutError(f"tool {name!r} did not return within its timeout of {timeout_s:g} s\n"
                               f"  To fix: make it faster, or raise the limit: @plait.tool(timeout_s=...).") from None


def check_tools(source: str, calls: list[Any]) -> None:
    """Refuse, at codegen, a program whose tools a worker could not import: every op.py_call's tool must be a
    module-level function of the agent file (FILE of FILE:AGENT) or one it imports. A source that is not a
    file on this machine (programs made from a module built in memory) is not checked here; the worker's
    load() checks it."""
    file = source.rpartition(":")[0] or source
    names = sorted({str(op.attributes["tool"].data) for op in calls})
    if not names or not Path(file).is_file():
        return
    for name in names:
        try:
            resolve_tool(ToolRef(file, name))
        except ToolError as err:
            where = next((loc for op in calls if op.attributes["tool"].data == name
                          and (loc := user_loc(op)) is not None), None)
            first, _, rest = str(err).partition("\n")
            raise ToolError(f"{first}\n  called at {where or file}\n{rest}") from None


class PythonTool:
    """op.py_call: a user's tool, imported once (load) and called with the op's operands in order."""

    def __init__(self, ref: ToolRef, params: list[str] | None = None,
                 constants: dict[str, Any] | None = None) -> None:
        self.ref = ref
        # with constants (`search(q, 10, region="us")`) the operands bind these parameter names, by keyword
        self.params, self.constants = params or [], constants or {}
        self.fn: Callable[..., Any] | None = None
        self.timeout_s = DEFAULT_TOOL_TIMEOUT_S
        self.name = ref.qualname

    @classmethod
    def from_step(cls, step: Step, context: Any) -> PythonTool:
        # the tool's name is its function's; it is looked up in the agent file the program was made from
        file = context.source.rpartition(":")[0] or context.source
        params, constants = step.attrs.get("params"), step.attrs.get("constants")
        return cls(ToolRef(file, str(step.attrs["tool"])),
                   [str(p) for p in params] if isinstance(params, list) else None,
                   dict(constants) if isinstance(constants, dict) else None)

    def load(self) -> None:
        self.fn, self.timeout_s, self.name = resolve_tool(self.ref)

    def __call__(self, *values: Any, on_slow: Callable[[], None] | None = None) -> Any:
        if self.fn is None:
            self.load()
        assert self.fn is not None
        if not self.params and not self.constants:
            return call_with_timeout(self.fn, values, self.timeout_s, self.name, on_slow)
        if len(values) != len(self.params):
            raise ToolError(f"tool {self.name} got {len(values)} values for its parameters {self.params}")
        kwargs = {**dict(zip(self.params, values, strict=True)), **self.constants}
        return call_with_timeout(functools.partial(self.fn, **kwargs), (), self.timeout_s, self.name, on_slow)
