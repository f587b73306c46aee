"""A small agent for the serve tests: a tool that sleeps when asked to (`sleep:SECONDS ...`), then a branch to a
short or a long LLM call (`long...`), so a test can fill the queue, pass a deadline during a tool, or cancel a
long decode on purpose."""

import time

import plait


@plait.tool(latency_ms=1)
def pause(text: str) -> str:
    """Sleep the seconds a leading `sleep:N` asks for, then hand the text on."""
    if text.startswith("sleep:"):
        time.sleep(float(text.split()[0].removeprefix("sleep:")))
    return text


@plait.tool(latency_ms=1)
def length(text: str) -> str:
    return "long" if text.startswith("long") else "short"


@plait.agent
def short(text: str) -> str:
    return plait.llm("llama-3.2-1b", prompt=plait.prompt("Repeat: {t}", t=text), max_tokens=8)


@plait.agent
def long(text: str) -> str:
    return plait.llm("llama-3.2-1b", prompt=plait.prompt("Go on: {t}", t=text), max_tokens=4000)


@plait.agent(sla=plait.SLA(p95_ms=20000), qps=1)
def echo(text: str) -> str:
    said = pause(text)
    return plait.branch(length(said), said, arms=[short, long], p=[0.9, 0.1])
