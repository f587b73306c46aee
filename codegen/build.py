"""Split a placed module into device programs: one per pool of the plan, each op bound to a kernel.

    placed module (every op carries `pool`; xfer.send / xfer.recv at pool borders) + plan.json's pools
        --build_programs--> [Program per pool]

Ops run in module order (a pre-order walk, so a loop's body follows the loop op that starts it). Control
ops run in the request driver (`pool = "driver"`); values to and from it travel on the control channel and
are listed as the program's `from_driver` / `to_driver`, not as transfers.
"""

from __future__ import annotations

from dataclasses import dataclass
from io import StringIO

from xdsl.dialects.builtin import (
    ArrayAttr,
    DictionaryAttr,
    FloatAttr,
    IntegerAttr,
    IntegerType,
    ModuleOp,
    StringAttr,
)
from xdsl.dialects.func import FuncOp
from xdsl.ir import Attribute, BlockArgument, Operation, SSAValue
from xdsl.printer import Printer

from plait import __version__
from plait.codegen.errors import CodegenError, NoKernelError
from plait.codegen.kernels import CODEGEN_2, kernel_for
from plait.codegen.kernels.tools import check_tools
from plait.codegen.program import Buffer, Program, Step, Transfer
from plait.codegen.tensors import tensor_of, transfer_tensor
from plait.ir.dialects import xfer as X
from plait.ir.dialects._base import num, show
from plait.ir.dialects.agent import DistAttr
from plait.ir.location import user_loc
from plait.ir.place import DRIVER, pool_of
from plait.planner.catalog import Catalog
from plait.planner.plan import Plan, Pool

SKIPPED_ATTRS = ("pool",)
"""Attributes a step does not repeat: the pool is the program's."""


@dataclass(frozen=True)
class Origin:
    """What the programs were made from: the agent, FILE:AGENT and the plan's graph hash."""

    agent: str
    source: str
    graph_hash: str


def build_programs(placed: ModuleOp, plan: Plan, catalog: Catalog) -> list[Program]:
    """One Program per pool of `plan`, in the plan's pool order (see programs_for)."""
    return programs_for(placed, plan.pools, catalog, Origin(plan.agent, plan.source, plan.graph_hash))


def programs_for(placed: ModuleOp, pool_list: list[Pool], catalog: Catalog, origin: Origin) -> list[Program]:
    """One Program per pool of `pool_list` (plan.json's `pools`), in that order.

    Raises NoKernelError naming every op no kernel runs yet (its model, location and pool, and what is
    missing), ToolError when a tool is one a worker cannot import (a lambda, a closure), and CodegenError
    when the module names a pool the list does not have.
    """
    pools = {p.id: p for p in pool_list}
    names = _Names(placed)
    ops: dict[str, list[Operation]] = {p.id: [] for p in pool_list}
    missing: list[str] = []
    for op in placed.walk():
        pool = pool_of(op)
        if isinstance(op, ModuleOp | FuncOp) or pool in (None, DRIVER):
            continue
        assert pool is not None
        if pool not in pools:
            raise CodegenError(f"{op.name} at {user_loc(op) or 'an unknown line'} is placed in pool {pool!r}, which "
                               f"plan.json does not list (its pools: {', '.join(pools)})\n"
                               "  To fix: place the module and write the plan in one `plait plan` run.")
        ops[pool].append(op)
        kernel, why = kernel_for(op, catalog)
        if kernel is None:
            model = op.attributes.get("model")
            what = f"{op.name} of model {model.data!r}" if isinstance(model, StringAttr) else op.name
            missing.append(f"{what} at {user_loc(op) or '?'} (pool {pool}): {why}")
    check_tools(origin.source, [op for pool_ops in ops.values() for op in pool_ops if op.name == "op.py_call"])
    if missing:
        first = missing[0].split(" at ", 1)[0]
        more = f" (and {len(missing) - 1} more op(s))" if len(missing) > 1 else ""
        raise NoKernelError(f"no kernel for {first} {CODEGEN_2}{more}\n  " + "\n  ".join(missing) +
                            f"\n  To fix: for {origin.source}, choose models the kernels run today (dense llama or "
                            "qwen2 LLMs, BERT-style text encoders); see `plait catalog models`.")
    return [_program(pools[pid], ops[pid], origin, names, catalog) for pid in pools]


class _Names:
    """Value names as `plait ir --stage placed` prints them; values of sub-agent functions get `@func/`."""

    def __init__(self, module: ModuleOp) -> None:
        printer = Printer(stream=StringIO())
        printer.print_op(module)
        self._names = printer._ssa_values   # the printer's own names, so programs and printed IR agree
        funcs = [f for f in module.ops if isinstance(f, FuncOp)]
        self.entry = funcs[0] if funcs else None

    def __call__(self, value: SSAValue) -> str:
        name = "%" + self._names.get(value, "?")
        owner = value.block.parent_op() if isinstance(value, BlockArgument) else value.owner
        func = _func_of(owner if isinstance(owner, Operation) else None)
        return name if func is None or func is self.entry else f"@{func.sym_name.data}/{name}"


def _func_of(op: Operation | None) -> FuncOp | None:
    while op is not None and not isinstance(op, FuncOp):
        op = op.parent_op()
    return op


def _region(op: Operation, names: _Names, entry: FuncOp | None) -> str:
    """'' at the agent's top level; else e.g. `@coder > scf.while %loop` (outermost first)."""
    parts: list[str] = []
    current = op.parent_op()
    while current is not None and not isinstance(current, FuncOp):
        label = f" {names(current.results[0])}" if current.results else ""
        parts.append(f"{current.name}{label}")
        current = current.parent_op()
    if isinstance(current, FuncOp) and current is not entry:
        parts.append(f"@{current.sym_name.data}")
    return " > ".join(reversed(parts))


def attr_json(attr: Attribute) -> object:
    """An attribute as JSON: numbers, strings, lists; #agent.dist as {mean, p95}; anything else as MLIR text."""
    if isinstance(attr, DistAttr):
        mean, p95 = attr.values
        return {"mean": mean, "p95": p95}
    if isinstance(attr, IntegerAttr) and isinstance(attr.type, IntegerType) and attr.type.width.data == 1:
        return bool(attr.value.data)     # a tool's boolean constant
    if isinstance(attr, IntegerAttr | FloatAttr):
        return num(attr)
    if isinstance(attr, DictionaryAttr):
        return {k: attr_json(v) for k, v in attr.data.items()}
    if isinstance(attr, StringAttr):
        return attr.data
    if isinstance(attr, ArrayAttr):
        return [attr_json(a) for a in attr.data]
    if (as_json := getattr(attr, "as_json", None)) is not None:   # dialect attributes that know their JSON
        return as_json()
    return show(attr)


def _program(pool: Pool, ops: list[Operation], origin: Origin, names: _Names, catalog: Catalog) -> Program:
    here = {id(op) for op in ops}
    buffers: dict[str, Buffer] = {}
    from_driver: list[str] = []
    to_driver: list[str] = []

    def note(value: SSAValue, origin: str) -> str:
        name = names(value)
        if name not in buffers:
            buffers[name] = Buffer(name=name, type=show(value.type), tensor=tensor_of(value, catalog),
                                   origin=origin)  # type: ignore[arg-type]
            if origin == "driver":
                from_driver.append(name)
        return name

    steps = []
    for index, op in enumerate(ops):
        reads = [note(v, _origin(v, here, op)) for v in op.operands if not isinstance(v.type, X.HandleType)]
        writes = [note(r, "recv" if isinstance(op, X.RecvOp) else "op") for r in op.results
                  if not isinstance(r.type, X.HandleType)]
        for r in op.results:
            if any(pool_of(u.operation) == DRIVER for u in r.uses) and names(r) not in to_driver:
                to_driver.append(names(r))
        kernel, _ = kernel_for(op, catalog)
        assert kernel is not None   # build_programs refused the plan otherwise
        model = op.attributes.get("model")
        steps.append(Step(
            index=index, op=op.name, kernel=kernel.name, model=model.data if isinstance(model, StringAttr) else None,
            role=pool.role if kernel.name == "llm-engine" else None, reads=reads, writes=writes,
            attrs={k: attr_json(a) for k, a in op.attributes.items() if k not in SKIPPED_ATTRS},  # type: ignore[misc]
            region=_region(op, names, names.entry), loc=user_loc(op), transfer=_transfer(op, names, catalog)))
    return Program(plait_version=__version__, graph_hash=origin.graph_hash, agent=origin.agent, source=origin.source,
                   pool=pool, buffers=list(buffers.values()), steps=steps, from_driver=from_driver,
                   to_driver=to_driver)


def _origin(value: SSAValue, here: set[int], user: Operation) -> str:
    """Where a read value comes from: this program's op, its receive, or the driver."""
    owner = value.owner
    if isinstance(owner, Operation) and id(owner) in here:
        return "recv" if isinstance(owner, X.RecvOp) else "op"
    if isinstance(owner, Operation) and pool_of(owner) not in (None, DRIVER):
        raise CodegenError(f"{user.name} at {user_loc(user) or '?'} in pool {pool_of(user)!r} reads a value of pool "
                           f"{pool_of(owner)!r} with no xfer.recv\n"
                           "  This is a bug in plait's placement pass; please report it with the agent file.")
    return "driver"


def _transfer(op: Operation, names: _Names, catalog: Catalog) -> Transfer | None:
    if isinstance(op, X.SendOp):
        return Transfer(direction="send", peer=op.dst.data, channel=names(op.handle), buffer=names(op.value),
                        bytes=int(num(op.bytes)), tensor=transfer_tensor(op, catalog))
    if isinstance(op, X.RecvOp):
        send = op.handle.owner
        assert isinstance(send, X.SendOp), "xfer.recv's handle comes from an xfer.send"
        return Transfer(direction="recv", peer=op.src.data, channel=names(op.handle), buffer=names(op.result),
                        bytes=int(num(op.bytes)), tensor=transfer_tensor(send, catalog))
    return None
