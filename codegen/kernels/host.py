"""Host-side kernels: prompt formatting (op.format) and the glue ops that box, pick and build lists."""

from __future__ import annotations

from typing import Any

from plait.codegen.program import Step


class Format:
    """str.format of the op's template with its operands as positional fields ({0}, {1}, ...)."""

    def __init__(self, template: str) -> None:
        self.template = template

    @classmethod
    def from_step(cls, step: Step, context: object) -> Format:
        return cls(str(step.attrs.get("template", "")))

    def load(self) -> None:
        pass

    def __call__(self, *values: Any) -> str:
        return self.template.format(*values)


class Glue:
    """The agent dialect's plumbing ops that stay on the host: each a one-line list or index operation."""

    OPS = {
        "agent.box": lambda *v: v[0],                    # a value wrapped for a region boundary: unchanged
        "agent.select_arm": lambda *v: int(v[0]),        # a selector's result is the arm index
        "agent.gather": lambda *v: list(v),
        "agent.count": lambda *v: len(v[0]),
        "agent.item": lambda *v: v[0][int(v[1])] if len(v) > 1 else v[0][0],
        "agent.empty": lambda *v: [],
        "agent.append": lambda *v: [*v[0], v[1]],
    }

    def __init__(self, op: str) -> None:
        self.op = op
        self.fn = self.OPS[op]

    @classmethod
    def from_step(cls, step: Step, context: object) -> Glue:
        return cls(step.op)

    def load(self) -> None:
        pass

    def __call__(self, *values: Any) -> Any:
        return self.fn(*values)
