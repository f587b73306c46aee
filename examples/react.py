"""A ReAct agent: plan with an LLM, run the tool the plan names, observe, repeat until it finishes.

    plait graph examples/react.py:solve

Each turn the LLM writes `Thought: ...` and `Action: tool[input]`. A selector tool parses the
action; plait.branch runs that tool; the observation is appended to the transcript; the `is_done`
predicate ends the loop once the plan says `finish[...]`. A last LLM call writes the answer.
"""

from __future__ import annotations

import ast
import operator
import re

import plait

TOOLS = ("search", "calculator", "finish")
ACTION = re.compile(r"^\s*Action:\s*(\w+)\s*\[(.*)\]\s*$", re.MULTILINE)

HEADER = """You answer questions by thinking step by step and using tools.
Tools: search[query] looks a topic up; calculator[expression] does arithmetic;
finish[answer] ends with the answer. Reply with one `Thought:` line and one `Action:` line.

Question: {question}"""

STEP = """{transcript}
Next step. Reply with `Thought: ...` then `Action: tool[input]`."""

FINAL = """{transcript}

Using the transcript above, give the final answer to: {question}
Answer in one or two sentences."""

FACTS = {
    "eiffel tower": "The Eiffel Tower in Paris is 330 metres tall and was completed in 1889.",
    "mount everest": "Mount Everest is 8,849 metres high, on the border of Nepal and China.",
    "speed of light": "Light travels at 299,792,458 metres per second in a vacuum.",
    "python": "Python is a programming language first released by Guido van Rossum in 1991.",
}

_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
        ast.Pow: operator.pow, ast.USub: operator.neg, ast.UAdd: operator.pos}


def _last_action(transcript: str) -> tuple[str, str]:
    found = ACTION.findall(transcript)
    return (found[-1][0].lower(), found[-1][1].strip()) if found else ("finish", "")


@plait.tool(latency_ms=0.2)
def parse_action(plan: str) -> str:
    """The tool the plan asks for (one of TOOLS); `finish` when the plan names none or an unknown one."""
    name, _ = _last_action(plan)
    return name if name in TOOLS else "finish"


@plait.tool(latency_ms=0.2)
def action_input(plan: str) -> str:
    """The text inside the brackets of the plan's last `Action: tool[...]`."""
    return _last_action(plan)[1]


@plait.tool(latency_ms=plait.Dist.normal(350, 90), output_tokens=60)
def search(query: str) -> str:
    """Look a topic up in a small built-in encyclopedia (deterministic stand-in for a search API)."""
    key = query.lower()
    hits = [fact for topic, fact in FACTS.items() if topic in key or key in topic]
    return " ".join(hits) if hits else f"No results for {query!r}."


def _evaluate(node: ast.AST) -> float:
    if isinstance(node, ast.Expression):
        return _evaluate(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return float(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        return float(_OPS[type(node.op)](_evaluate(node.left), _evaluate(node.right)))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _OPS:
        return float(_OPS[type(node.op)](_evaluate(node.operand)))
    raise ValueError("only numbers and + - * / ** are allowed")


@plait.tool(latency_ms=0.5, output_tokens=8)
def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression (numbers, + - * / ** and parentheses) without eval()."""
    try:
        value = _evaluate(ast.parse(expression.replace(",", ""), mode="eval"))
    except (SyntaxError, ValueError, ZeroDivisionError) as err:
        return f"Error: {err}"
    return f"{value:g}"


@plait.tool(latency_ms=0.1, output_tokens=40)
def finish(answer: str) -> str:
    """The answer the plan settled on, as the observation of the last step."""
    return f"Final answer: {answer}"


@plait.tool(latency_ms=0.2, output_tokens=150)
def observe(transcript: str, plan: str, observation: str) -> str:
    """Append this step's plan and what the tool returned to the transcript."""
    return f"{transcript}\n{plan.strip()}\nObservation: {observation}"


@plait.tool(latency_ms=0.1)
def is_done(transcript: str) -> bool:
    """True once the last action in the transcript is `finish`."""
    return _last_action(transcript)[0] == "finish"


@plait.agent(sla=plait.SLA(p95_ms=15000, ttft_ms=12000), qps=2)   # TTFT from arrival: the answer follows the loop
def solve(question: str) -> str:
    def step(transcript: str) -> plait.Sym:
        plan = plait.llm("llama-3.1-8b", prompt=plait.prompt(STEP, transcript=transcript),
                         max_tokens=200, output_tokens=plait.Dist.normal(80, 25))
        # the plan names the tool to run: parse_action picks the arm, action_input is its argument
        observation = plait.branch(parse_action(plan), action_input(plan),
                                   arms=[search, calculator, finish], p=[0.55, 0.2, 0.25])
        return observe(transcript, plan, observation)

    start = plait.prompt(HEADER, question=question)
    transcript = plait.loop(step, init=start, until=is_done, max_iters=6,
                            expected_iters=plait.Dist.uniform(2, 4))
    return plait.llm("llama-3.1-8b", prompt=plait.prompt(FINAL, transcript=transcript, question=question),
                     max_tokens=256, output_tokens=plait.Dist.normal(60, 20))
