"""A seeded writer of agents for the analytic-versus-simulated p95 test: nested loops, branches and maps over
LLM calls and tools, at a chosen request rate (tests/test_generated_latency.py)."""

from __future__ import annotations

import itertools
import random

TOOLS = '''\
import plait


@plait.tool(latency_ms=plait.Dist.normal(40, 10), output_tokens=120)
def shout(x: str) -> str:
    return x.upper()


@plait.tool(latency_ms=2)
def check(x: str) -> bool:
    return len(x) > 10
'''
PRELUDE = TOOLS + '''

@plait.tool(latency_ms=5, output_tokens=40)
def split(x: str) -> list[str]:
    return x.split()
'''
MODELS = ["llama-3.2-1b", "llama-3.1-8b"]


class Writer:
    """Python source of one agent, drawn from `random.Random(seed)`: each step reads the one before."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.counter = itertools.count(1)
        self.defs: list[str] = []

    def fresh(self, base: str) -> str:
        return f"{base}{next(self.counter)}"

    def block(self, src: str, depth: int, indent: str) -> tuple[list[str], str]:
        lines: list[str] = []
        for _ in range(self.rng.randint(1, 3)):
            new, src = self.step(src, depth, indent)
            lines += new
        return lines, src

    def function(self, depth: int, indent: str) -> tuple[list[str], str]:
        name, param = self.fresh("f"), self.fresh("x")
        body, out = self.block(param, depth - 1, indent + "    ")
        return [f"{indent}def {name}({param}):", *body, f"{indent}    return {out}"], name

    def step(self, src: str, depth: int, indent: str) -> tuple[list[str], str]:
        kinds = ["llm", "llm", "tool"] + (["loop", "branch", "map"] if depth > 0 else [])
        kind, out = self.rng.choice(kinds), self.fresh("v")
        if kind == "llm":
            mean = self.rng.randint(8, 200)
            return [f"{indent}{out} = plait.llm({self.rng.choice(MODELS)!r}, prompt={src}, max_tokens={2 * mean}, "
                    f"output_tokens=plait.Dist.normal({mean}, {self.rng.randint(0, mean // 3)}))"], out
        if kind == "tool":
            return [f"{indent}{out} = shout({src})"], out
        fn, name = self.function(depth, indent)
        if kind == "loop":
            most = self.rng.randint(2, 5)
            return [*fn, f"{indent}{out} = plait.loop({name}, init={src}, until=check, max_iters={most}, "
                         f"expected_iters={self.rng.uniform(1, most):.2f})"], out
        if kind == "branch":
            other, other_name = self.function(depth, indent)
            p = self.rng.choice([0.1, 0.3, 0.5, 0.75])
            return [*fn, *other, f"{indent}{out} = plait.branch(check({src}), {src}, arms=[{name}, {other_name}], "
                                  f"p=[{p}, {1 - p:.2f}])"], out
        n = self.rng.randint(2, 6)
        return [*fn, f'{indent}{out} = plait.prompt("All: {{t}}", t=plait.map({name}, split({src}), '
                     f"expected_len={n}))"], out


def agent_source(seed: int, qps: float, depth: int = 2) -> str:
    """An agent `main` at `qps` requests/s with a loose p95 target (the cheapest plan: utilization up to the
    planner's cap)."""
    w = Writer(seed)
    body, out = w.block("q", depth, "    ")
    return (PRELUDE + f"\n\n@plait.agent(sla=plait.SLA(p95_ms=600000), qps={qps})\ndef main(q: str) -> str:\n"
            + "\n".join(body) + f"\n    return {out}\n")
