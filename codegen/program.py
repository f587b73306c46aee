"""A device program: the ordered ops one pool runs, each bound to a kernel, with its buffers and transfers.

Programs are what a worker loads: JSON files with plait's version and the plan's graph hash (a program made
from another version of the agent is refused by comparing the hash), which round-trip exactly
(`load_program(dump_program(p)) == p`, and a re-dump is byte-identical).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError

from plait.codegen.errors import CodegenError
from plait.codegen.tensors import TensorSpec
from plait.planner.plan import Pool
from plait.planner.validation import first_problem

PROGRAM_FORMAT = "plait.program/1"
"""A program file's format: bump it when a field's meaning changes, so an older worker refuses the file."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Buffer(_Model):
    """A value the program holds: made by one of its ops, received from another pool, or sent by the driver."""

    name: str = Field(description="the value's name as `plait ir --stage placed` prints it (%llm_kv); values of a "
                                  "sub-agent's function carry its name (@coder/%llm)")
    type: str = Field(description="its MLIR type, e.g. !agent.kv<\"llama-3.1-8b\">")
    tensor: TensorSpec | None = Field(description="dtype and planned shape; None where only the run knows (a "
                                                  "tool's text, audio from the request)")
    origin: Literal["op", "recv", "driver"] = Field(description="op: made here; recv: received from another pool; "
                                                              "driver: arrives on the control channel")


class Transfer(_Model):
    """One end of a move between two pools (an xfer.send or xfer.recv of the placed module)."""

    direction: Literal["send", "recv"]
    peer: str = Field(description="the pool at the other end")
    channel: str = Field(description="names the pair: both ends carry the same channel")
    buffer: str = Field(description="the buffer sent, or the buffer the received value lands in")
    bytes: int = Field(ge=0, description="the planner's estimate of the bytes moved")
    tensor: TensorSpec = Field(description="what the receiver allocates before the bytes arrive")


class Step(_Model):
    """One op of the program, in execution order."""

    index: int = Field(ge=0)
    op: str = Field(description="the op, e.g. op.prefill")
    kernel: str = Field(description="the kernel that runs it (plait.codegen.kernels)")
    model: str | None = Field(default=None, description="the model the kernel runs, if any")
    role: Literal["unified", "prefill", "decode"] | None = Field(default=None, description="llm-engine: the role")
    reads: list[str] = Field(default_factory=list, description="buffers the op reads, in operand order")
    writes: list[str] = Field(default_factory=list, description="buffers the op writes")
    attrs: dict[str, JsonValue] = Field(default_factory=dict, description="the op's attributes (figures, limits, "
                                                                          "sampling), as JSON")
    region: str = Field(default="", description="where the op sits: '' at the agent's top level, else the "
                                                "function and the control op(s) around it")
    loc: str | None = Field(default=None, description="the user's file:line")
    transfer: Transfer | None = Field(default=None, description="xfer ops: the transfer")


class Program(_Model):
    """Everything one pool runs for the agent: the unit a worker loads."""

    format: str = Field(default=PROGRAM_FORMAT)
    plait_version: str
    graph_hash: str = Field(description="the plan's graph_hash: the traced agent the program was made from")
    agent: str
    source: str = Field(description="FILE:AGENT")
    pool: Pool = Field(description="the plan's pool record (device, role, TP, replicas, ...)")
    buffers: list[Buffer]
    steps: list[Step]
    from_driver: list[str] = Field(default_factory=list, description="buffers the driver sends (request inputs, "
                                                                    "loop-carried values)")
    to_driver: list[str] = Field(default_factory=list, description="buffers the driver reads back (answers, "
                                                                  "predicates, arm selectors)")


def dump_program(program: Program) -> str:
    """The program as JSON text (indented, keys in field order, a final newline): what a worker loads."""
    return program.model_dump_json(indent=1) + "\n"


def load_program(text: str, where: str = "program") -> Program:
    """A program from JSON text; CodegenError naming `where` and the field if it is not a valid program file."""
    try:
        program = Program.model_validate_json(text)
    except ValidationError as exc:
        raise CodegenError(f"{where} is not a plait program: {first_problem(exc)}\n"
                           "  To fix: write it again with `plait ir FILE:AGENT --stage program --out DIR`.") from None
    if program.format != PROGRAM_FORMAT:
        raise CodegenError(f"{where} has format {program.format!r}, but this plait reads {PROGRAM_FORMAT!r}\n"
                           "  To fix: write it again with this plait's `plait ir --stage program --out DIR`.")
    return program


def write_programs(programs: list[Program], folder: Path) -> list[Path]:
    """One `<pool id>.program.json` per program in `folder` (made if missing); returns the paths written."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for program in programs:
        path = folder / f"{program.pool.id}.program.json"
        path.write_text(dump_program(program))
        paths.append(path)
    return paths
