"""Small agents for the IR tests: a reused prompt, a dead step, an answer fed back, mixed captures, maps, calls."""

from __future__ import annotations

import plait
from plait.sdk import Agent


@plait.tool(latency_ms=1.0)
def good_enough(text: str) -> bool:
    return len(text) > 10


@plait.tool(latency_ms=2.0)
def shout(text: str) -> str:
    return text.upper()


@plait.agent
def twice(question: str) -> str:
    """One prompt, two answers: the prompt is tokenized and prefilled once, decoded twice."""
    p = plait.prompt("Q: {q}", q=question)
    short = plait.llm("llama-3.1-8b", prompt=p, max_tokens=32)
    long = plait.llm("llama-3.1-8b", prompt=p, max_tokens=256)
    return plait.prompt("{a}\n{b}", a=short, b=long)


@plait.agent
def dead_embed(question: str) -> str:
    """An embedding nobody reads: dropped at the ops stage."""
    plait.embed(question, model="minilm-l6")
    return plait.llm("llama-3.1-8b", prompt=question, max_tokens=64)


@plait.agent
def chain(question: str) -> str:
    """An answer fed straight back as the next prompt (same model): its tokens are reused."""
    first = plait.llm("llama-3.1-8b", prompt=question, max_tokens=64)
    return plait.llm("llama-3.1-8b", prompt=first, max_tokens=64)


@plait.agent
def mixed_loop(question: str) -> str:
    """A loop reading a text and docs from outside: both keep their types (only the prompt boxes them)."""
    docs = plait.retrieve(index="wiki", query=plait.embed(question, model="minilm-l6"), k=4, doc_tokens=100)

    def step(draft: str) -> plait.Sym:
        return plait.llm("llama-3.1-8b", prompt=plait.prompt("{q} {d} {x}", q=question, d=docs, x=draft),
                         max_tokens=64)

    return plait.loop(step, init=question, until=good_enough, max_iters=3, expected_iters=2)


@plait.agent
def helper(text: str) -> str:
    return plait.llm("llama-3.1-8b", prompt=text, max_tokens=16)


@plait.agent
def calls_twice(question: str) -> str:
    """The same sub-agent called twice, on inputs of different sizes: two functions (issue 8)."""
    return helper(helper(question))


@plait.agent
def mapped(question: str) -> str:
    """A map over retrieved docs with a capture, and a bool branch."""
    docs = plait.retrieve(index="wiki", query=plait.embed(question, model="minilm-l6"), k=4, doc_tokens=100)
    notes = plait.map(lambda d: plait.llm("llama-3.2-1b", prompt=plait.prompt("{q}: {d}", q=question, d=d),
                                          max_tokens=32), docs)
    joined = plait.prompt("{n}", n=notes)
    return plait.branch(good_enough(joined), joined, arms={"keep": lambda t: t, "loud": shout}, p=[0.7, 0.3])


@plait.agent
def summarize(text: str) -> str:
    """A sub-agent whose prompt size follows its input (no prompt_tokens given)."""
    return plait.llm("llama-3.1-8b", prompt=plait.prompt("Summarize:\n{t}", t=text), max_tokens=128,
                     output_tokens=100)


@plait.agent
def short_and_long(question: str) -> str:
    """One sub-agent called on a question (~70 tokens) and on an essay (~3,500): two figures, two functions."""
    essay = plait.llm("llama-3.1-8b", prompt=question, max_tokens=4096, output_tokens=3500)
    return plait.prompt("{a}\n{b}", a=summarize(question), b=summarize(essay))


def make_answerer(model: str) -> Agent:
    """A factory: every agent it makes is called `answerer`, each with its own model."""

    @plait.agent
    def answerer(question: str) -> str:
        return plait.llm(model, prompt=question, max_tokens=64, output_tokens=40)

    return answerer


small_answerer, large_answerer = make_answerer("llama-3.2-1b"), make_answerer("llama-3.1-70b")


@plait.agent
def small_then_large(question: str) -> str:
    """Two agents from one factory (same name, different models): both models' stages are planned."""
    return large_answerer(small_answerer(question))


@plait.agent
def calls_alike(question: str) -> str:
    """The same sub-agent called twice on values of one size: one function."""
    return plait.prompt("{a}\n{b}", a=helper(question), b=helper(question))


INSTRUCTION = "Summarize the passage below in two sentences for a busy engineer; keep numbers exact.\n\n"


@plait.agent
def chunked(question: str) -> str:
    """A map whose every element's prompt starts with one instruction."""
    docs = plait.retrieve(index="wiki", query=plait.embed(question, model="minilm-l6"), k=8, doc_tokens=200)
    notes = plait.map(lambda d: plait.llm("llama-3.2-1b", prompt=plait.prompt(INSTRUCTION + "{d}", d=d),
                                          max_tokens=64), docs)
    return plait.prompt("{n}", n=notes)


@plait.agent
def three_calls(question: str) -> str:
    """Same template on two models, then another template on the first model, then the first template again."""
    a = plait.llm("llama-3.1-8b", prompt=plait.prompt(INSTRUCTION + "{q}", q=question), max_tokens=64)
    b = plait.llm("llama-3.2-1b", prompt=plait.prompt(INSTRUCTION + "{q}", q=question), max_tokens=64)
    c = plait.llm("llama-3.1-8b", prompt=plait.prompt("Translate to French:\n{q}", q=question), max_tokens=64)
    d = plait.llm("llama-3.1-8b", prompt=plait.prompt(INSTRUCTION + "{c}", c=c), max_tokens=64)
    return plait.prompt("{a} {b} {d}", a=a, b=b, d=d)


@plait.agent
def wasteful(question: str) -> str:
    """An LLM call and an embedding nobody reads, and the same search twice."""
    plait.llm("llama-3.1-70b", prompt=question, max_tokens=256)
    plait.embed(plait.prompt("unused: {q}", q=question), model="minilm-l6")
    first = plait.retrieve(index="wiki", query=plait.embed(question, model="minilm-l6"), k=4, doc_tokens=100)
    again = plait.retrieve(index="wiki", query=plait.embed(question, model="minilm-l6"), k=4, doc_tokens=100)
    return plait.llm("llama-3.1-8b", prompt=plait.prompt("{a}\n{b}\n{q}", a=first, b=again, q=question),
                     max_tokens=64)
