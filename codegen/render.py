"""Device programs as readable text (`plait ir FILE:AGENT --stage program`): one section per pool.

    program llm-llama-3.1-8b-0: llm llama-3.1-8b, unified | h200, TP 1, 1 replica | graph 3f2a9c1b
      from driver: %question
       0  xfer.recv   transfer    %3 <- search-wiki-0 (%2): uint8[bytes 3600*]          rag.py:19
       ...
       6  op.decode   llm-engine  %llm_gen = (%llm_kv)  max_tokens=256 ...                rag.py:20
      to driver: %llm
"""

from __future__ import annotations

from plait.codegen.program import Program, Step

SHOWN_ATTRS = ("max_tokens", "k", "tool", "constants", "index", "sampling")
"""Attributes a step's line shows (the rest are planning figures, in the JSON file)."""


def _figure(value: object) -> str:
    if isinstance(value, dict) and set(value) == {"mean", "p95"}:
        return f"{value['mean']:g} (p95 {value['p95']:g})"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_figure(v)}" for k, v in value.items()) + "}"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, str):
        return repr(value) if value != value.strip() or "\n" in value else value
    return str(value)


def _kernel(step: Step) -> str:
    if step.kernel == "llm-engine":
        return f"llm-engine({step.model}, {step.role})"
    if step.model is not None:
        return f"{step.kernel}({step.model})"
    return step.kernel


def _buffers(program: Program, names: list[str]) -> str:
    by_name = {b.name: b for b in program.buffers}
    out = []
    for n in names:
        t = by_name[n].tensor
        out.append(f"{n}: {t.text()}" if t is not None else n)
    return ", ".join(out)


def step_line(program: Program, step: Step) -> str:
    """One op: index, op, kernel, what it writes and reads (with dtype and planned shape), attributes, loc."""
    if (t := step.transfer) is not None:
        arrow = f"{t.buffer} -> {t.peer}" if t.direction == "send" else f"{t.buffer} <- {t.peer}"
        body = f"{arrow} [channel {t.channel}, {t.bytes} B]: {t.tensor.text()}"
    else:
        writes = _buffers(program, step.writes)
        body = f"{writes} = ({', '.join(step.reads)})" if writes else f"({', '.join(step.reads)})"
        shown = [f"{k}={_figure(step.attrs[k])}" for k in SHOWN_ATTRS if k in step.attrs]
        if shown:
            body += "  " + " ".join(shown)
    where = f"  {step.loc}" if step.loc else ""
    region = f"  in {step.region}" if step.region else ""
    return f"  {step.index:>3}  {step.op:<15} {_kernel(step):<34} {body}{region}{where}"


def header(program: Program) -> str:
    p = program.pool
    what = " ".join(x for x in (p.kind, p.model, p.role) if x)
    share = f" ({p.slice} {p.slice_fraction:g})" if p.slice != "none" else ""
    device = f"host CPU of {p.device}" if p.host_cpu else p.device
    cores = f", {p.cpu_cores} core{'s' if p.cpu_cores != 1 else ''}" if p.cpu_cores else ""
    peer = f", peer {p.peer}" if p.peer else ""
    replicas = f"{p.replicas} replica{'s' if p.replicas != 1 else ''}"
    return (f"program {p.id}: {what} | {device}{share}, TP {p.tensor_parallel}, {replicas}{cores}{peer} | "
            f"graph {program.graph_hash[:12] or '-'}")


def render_program(program: Program) -> str:
    lines = [header(program)]
    if program.from_driver:
        lines.append(f"  from driver: {', '.join(program.from_driver)}")
    lines += [step_line(program, s) for s in program.steps]
    if program.to_driver:
        lines.append(f"  to driver: {', '.join(program.to_driver)}")
    return "\n".join(lines) + "\n"


def render_programs(programs: list[Program]) -> str:
    """Every program, one section each, separated by a blank line (deterministic: pinned by tests)."""
    if not programs:
        return "(no pools)\n"
    first = programs[0]
    top = f"// device programs of {first.source} (plait {first.plait_version}, {len(programs)} pools)\n"
    return top + "\n".join(render_program(p) for p in programs)
