"""Agents for the fault and overload tests (tests/test_faults.py, tests/test_serve_faults.py). `answer` runs an
encoder, a tool and an LLM in three pools; its tool appends each call's text to the file $PLAIT_NOTES (the tests
count its invocations) and pauses when asked (`sleep:SECONDS ...`, until the test lets it go) so a test can kill
its worker mid-call. `pay` calls a tool that must not run twice; `steady` is a tool and one short LLM call."""

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


@plait.agent(sla=plait.SLA(p95_ms=5000), qps=10)
def answer(question: str) -> str:
    noted = note(question, plait.embed(question, model="minilm-l6"))
    return plait.llm("llama-3.2-1b", prompt=plait.prompt("Answer briefly: {n}", n=noted), max_tokens=256,
                     prompt_tokens=40, output_tokens=plait.Dist.normal(96, 10))


@plait.agent(sla=plait.SLA(p95_ms=5000), qps=2)
def pay(question: str) -> str:
    return charge(question)


@plait.tool(latency_ms=1)
def trim(question: str) -> str:
    return question.strip()


@plait.agent(sla=plait.SLA(p95_ms=5000), qps=2)
def steady(question: str) -> str:
    """A tool and one short LLM call (two workers: each pinned to one of two cores, one torch thread each; a
    single worker gets both cores and two threads, which thrash when other processes load the machine)."""
    return plait.llm("llama-3.2-1b", prompt=plait.prompt("Answer briefly: {q}", q=trim(question)), max_tokens=32,
                     prompt_tokens=40, output_tokens=plait.Dist.normal(16, 2))
