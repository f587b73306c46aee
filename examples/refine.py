"""Self-refinement: a coder agent writes code, a reviewer agent critiques it, repeat until approved.

    plait graph examples/refine.py:code_review

Each round is a call to two agents; the rounds repeat nearly the same prompts, which is where
speculating from earlier outputs pays. The carried value is the last round's record (code and
review); `approved` reads the verdict, `final_code` pulls the code out.
"""

from __future__ import annotations

import re

import plait

CODER = """You are a careful Python programmer.
Task: {task}

Previous round (empty on the first round):
{previous}

Write the complete, corrected solution as one ```python block. Address every review point."""

REVIEWER = """You review Python code for correctness, edge cases and clarity.
Task: {task}

Code:
{code}

List concrete problems, one per line. End with `VERDICT: APPROVED` if the code is correct and
complete, else `VERDICT: CHANGES REQUESTED`."""

FIRST_ROUND = "No code yet: this is the first round."
CODE_BLOCK = re.compile(r"```(?:python)?\n(.*?)```", re.DOTALL)


@plait.agent(sla=plait.SLA(p95_ms=20000, ttft_ms=2000))
def coder(task: str, previous: str) -> str:
    return plait.llm("qwen2.5-32b", prompt=plait.prompt(CODER, task=task, previous=previous),
                     max_tokens=1024, output_tokens=plait.Dist.normal(450, 150))


@plait.agent
def reviewer(task: str, code: str) -> str:
    return plait.llm("llama-3.1-70b", prompt=plait.prompt(REVIEWER, task=task, code=code),
                     max_tokens=400, output_tokens=plait.Dist.normal(160, 60))


@plait.tool(latency_ms=0.2, output_tokens=650)
def record_round(code: str, review: str) -> str:
    """One round as text: the code, then the review of it."""
    return f"### Code\n{code.strip()}\n\n### Review\n{review.strip()}"


@plait.tool(latency_ms=0.1)
def approved(round_record: str) -> bool:
    """True when the review in the round's record ends with `VERDICT: APPROVED`."""
    review = round_record.rsplit("### Review", 1)[-1]
    return "VERDICT: APPROVED" in review.upper()


@plait.tool(latency_ms=0.2, output_tokens=450)
def final_code(round_record: str) -> str:
    """The code of the last round: its first ```python block, or the whole code section."""
    section = round_record.split("### Review", 1)[0].removeprefix("### Code").strip()
    block = CODE_BLOCK.search(section)
    return block.group(1).strip() if block else section


@plait.agent(sla=plait.SLA(p95_ms=60000), qps=0.5)
def code_review(task: str) -> str:
    def revise(previous: str) -> plait.Sym:
        code = coder(task, previous)
        return record_round(code, reviewer(task, code))

    first = plait.prompt(FIRST_ROUND)
    last = plait.loop(revise, init=first, until=approved, max_iters=4,
                      expected_iters=plait.Dist.normal(2, 0.7))
    return final_code(last)
