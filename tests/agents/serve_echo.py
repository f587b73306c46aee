"""A small agent for the serve tests: a tool that sleeps when asked to (`sleep:SECONDS ...`), then an LLM call,
so a test can fill the queue and pass a deadline on purpose."""

import time

import plait


@plait.tool(latency_ms=1)
def pause(text: str) -> str:
    """Sleep the seconds a leading `sleep:N` asks for, then hand the text on."""
    if text.startswith("sleep:"):
        time.sleep(float(text.split()[0].removeprefix("sleep:")))
    return text


@plait.agent(sla=plait.SLA(p95_ms=20000), qps=1)
def echo(text: str) -> str:
    return plait.llm("llama-3.2-1b", prompt=plait.prompt("Repeat: {t}", t=pause(text)), max_tokens=8)
