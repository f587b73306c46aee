"""Agents for the fault tests (tests/test_faults.py): an encoder, a tool and an LLM in three pools, the tool
appending each call's text to the file $PLAIT_NOTES (the tests count its invocations) and sleeping when asked
(`sleep:SECONDS ...`, until it lets go) so a test can kill its worker mid-call; `pay` calls a tool that must not run twice."""

import os
import time

import plait


def _append(text: str) -> None:
    with open(os.environ["PLAIT_NOTES"], "a") as notes:
        notes.write(text + "\n")


def _pause(text: str) -> None:
    """`sleep:SECONDS ...`: wait that long at most, or until the file $PLAIT_NOTES.go exists (a test lets it go)."""
    if not text.startswith("sleep:"):
        return
    go = os.environ["PLAIT_NOTES"] + ".go"
    end = time.monotonic() + float(text.split()[0].removeprefix("sleep:"))
    while time.monotonic() < end and not os.path.exists(go):
        time.sleep(0.02)


@plait.tool(latency_ms=2)
def note(question: str, vec) -> str:   # noqa: ANN001 -- the embedding arrives as a tensor
    """Record the question, then sleep as asked: the question names the request, so the file counts its calls."""
    _append(question)
    _pause(question)
    return f"{question} ({vec.shape[-1]} dims)"


@plait.tool(latency_ms=2, idempotent=False)
def charge(question: str) -> str:
    """A side effect that must happen once: never re-run after its worker died."""
    _append(question)
    _pause(question)
    return "charged " + question


@plait.agent(sla=plait.SLA(p95_ms=5000), qps=8)
def answer(question: str) -> str:
    noted = note(question, plait.embed(question, model="minilm-l6"))
    return plait.llm("llama-3.2-1b", prompt=plait.prompt("Answer briefly: {n}", n=noted), max_tokens=64,
                     prompt_tokens=40, output_tokens=plait.Dist.normal(24, 4))


@plait.agent(sla=plait.SLA(p95_ms=5000), qps=2)
def pay(question: str) -> str:
    return charge(question)
