"""`plait cost --remote URL`: measure an OpenAI-compatible endpoint with a few bounded requests.

Through the official `openai` client (streamed, usage included), timing whole calls, so that a server that holds
back text (a tokenizer's partial characters) cannot skew the figures:
- overhead: a one-word prompt answered with one token (HTTP, scheduling, a trivial prefill), median of 3;
- prefill: a long prompt answered with one token, its extra time over the overhead per extra prompt token
  (median of 3);
- decode: each call's output tokens after the first over its time beyond its prompt's (overhead and prefill),
  one call alone (median of 3), then `concurrency` calls at once (their median); with `ignore_eos` where the
  server takes it, so each call makes `max_tokens`.
Every prompt starts with a fresh nonce, so no prefix cache (of this run or an earlier one) serves it. Token
counts are the endpoint's own (the usage of each answer). Every request has the time left of `budget_s` as its
timeout, so the whole measurement stays within it.
"""

from __future__ import annotations

import statistics
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from plait.planner.endpoint import RemoteEndpoint
from plait.scheduler.remote_calls import RemoteError, api_key, client, explain, probe

WORDS = "the quick brown fox jumps over the lazy dog while a small bird sings near the river bank "


@dataclass
class Sample:
    total_s: float
    prompt_tokens: int
    output_tokens: int

    def decode_tps(self, first_s: float) -> float | None:
        """Output tokens per second after the first, which took `first_s` (None for a one-token answer)."""
        span = self.total_s - first_s
        return (self.output_tokens - 1) / span if self.output_tokens > 1 and span > 0 else None


@dataclass
class Measured:
    endpoint: RemoteEndpoint
    overhead_s: float
    prefill_tps: float
    long_prompt: Sample
    decode: dict[int, float] = field(default_factory=dict)   # concurrency -> tokens/s of each call
    models: list[str] = field(default_factory=list)
    seconds: float = 0.0
    requests: int = 0


class _Meter:
    def __init__(self, endpoint: RemoteEndpoint, key: str, budget_s: float) -> None:
        self.endpoint, self.key = endpoint, key
        self.deadline = time.monotonic() + budget_s
        self.sent = 0

    def left(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0.5:
            raise RemoteError(f"plait cost --remote {self.endpoint.base_url}: the time budget ran out before the "
                              "measurement finished\n  To fix: raise --budget-s, or lower --max-tokens or "
                              "--concurrency.")
        return left

    def one(self, prompt: str, max_tokens: int, ignore_eos: bool = True) -> Sample:
        import openai

        prompt = f"{uuid.uuid4().hex[:8]} {prompt}"   # first: a prefix cache never serves it
        api = client(self.endpoint, self.key, self.left(), retries=0)
        self.sent += 1
        start = time.perf_counter()
        usage: Any = None
        pieces = 0
        extra = {"extra_body": {"ignore_eos": True}} if ignore_eos else {}
        try:
            stream = api.completions.create(model=self.endpoint.served_model, prompt=prompt, max_tokens=max_tokens,
                                            temperature=0.0, stream=True, stream_options={"include_usage": True},
                                            **extra)
            with stream:
                for chunk in stream:
                    if chunk.usage is not None:
                        usage = chunk.usage
                    if chunk.choices and chunk.choices[0].text:
                        pieces += 1
        except openai.UnprocessableEntityError as err:
            if ignore_eos and "ignore_eos" in str(err):   # a server without the extension: stop at the end token
                return self.one(prompt, max_tokens, ignore_eos=False)
            raise explain(err, self.endpoint, "plait cost --remote") from None
        except openai.APIError as err:
            raise explain(err, self.endpoint, "plait cost --remote") from None
        return Sample(total_s=time.perf_counter() - start,
                      prompt_tokens=usage.prompt_tokens if usage is not None else 0,
                      output_tokens=usage.completion_tokens if usage is not None else pieces)

    def together(self, n: int, max_tokens: int) -> list[Sample]:
        """`n` calls at once (threads), each a different prompt so no prefix cache serves them."""
        out: list[Sample | Exception] = []
        lock = threading.Lock()

        def go(i: int) -> None:
            try:
                s: Sample | Exception = self.one(f"call {i}: {WORDS}", max_tokens)
            except Exception as err:
                s = err
            with lock:
                out.append(s)

        threads = [threading.Thread(target=go, args=(i,), daemon=True) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(self.left())
        errors = [s for s in out if isinstance(s, Exception)]
        if errors:
            raise errors[0]
        if len(out) < n:
            self.left()   # raises: the budget ran out with calls still running
        return [s for s in out if isinstance(s, Sample)]


def measure(endpoint: RemoteEndpoint, concurrency: int = 4, max_tokens: int = 64, prompt_words: int = 256,
            budget_s: float = 60.0) -> Measured:
    """The endpoint's figures (see the module docstring); RemoteError naming the fix when it cannot be used."""
    start = time.monotonic()
    models = probe(endpoint, "plait cost --remote", timeout_s=min(10.0, budget_s))
    meter = _Meter(endpoint, api_key(endpoint, "plait cost --remote"), budget_s)
    meter.one("Hi", 1)   # warm-up: connections, the first request's setup
    short = [meter.one("Hi", 1) for _ in range(3)]
    words = WORDS.split()
    longs: list[Sample] = []
    while prompt_words >= 8 and not longs:   # the longest prompt it takes (a small model has few positions)
        text = " ".join(words[i % len(words)] for i in range(prompt_words))
        try:
            longs = [meter.one(text, 1) for _ in range(3)]
        except RemoteError as err:
            if "refused" in str(err) or "cannot reach" in str(err):
                raise
            prompt_words //= 2
    if not longs:
        raise RemoteError(f"plait cost --remote {endpoint.base_url}: no prompt of 8 words or more was answered\n"
                          "  To fix: check the server's logs.")
    long = sorted(longs, key=lambda s: s.total_s)[1]   # the median
    overhead = statistics.median(s.total_s for s in short)
    base_tokens = statistics.median(s.prompt_tokens for s in short)
    extra_tokens, extra_s = long.prompt_tokens - base_tokens, long.total_s - overhead
    prefill_tps = extra_tokens / extra_s if extra_tokens > 0 and extra_s > 0 else max(long.prompt_tokens, 1) / long.total_s

    def first_s(s: Sample) -> float:   # the call's prompt and first token: the overhead and its extra prompt
        return overhead + max(s.prompt_tokens - base_tokens, 0) / prefill_tps

    decode: dict[int, float] = {}
    for n in sorted({1, concurrency}):
        samples = [s for _ in range(3 if n == 1 else 1) for s in meter.together(n, max_tokens)]
        rates = [r for s in samples if (r := s.decode_tps(first_s(s))) is not None]
        if rates:
            decode[n] = statistics.median(rates)
    if not decode:
        raise RemoteError(f"plait cost --remote {endpoint.base_url}: every answer was one token long, so no decode "
                          "rate could be measured\n  To fix: use a server that takes ignore_eos, or a model that "
                          "writes longer answers.")
    return Measured(endpoint, overhead, prefill_tps, long, decode, models, time.monotonic() - start, meter.sent)


def inventory_snippet(m: Measured, catalog_model: str, name: str, price: float, max_sequences: int) -> str:
    """The `remote:` entry to paste into an inventory file."""
    e = m.endpoint
    decode = ", ".join(f"{n}: {tps:.1f}" for n, tps in m.decode.items())
    lines = [
        "remote:",
        f"  - name: {name}",
        f"    model: {catalog_model}",
        f"    base_url: {e.base_url}",
        f"    served_model: {e.served_model}",
        f"    price_per_hour: {price:g}          # USD per hour: declare what the endpoint costs you",
        f"    prefill_tokens_per_s: {m.prefill_tps:.0f}",
        f"    decode_tokens_per_s: {{{decode}}}",
        f"    max_sequences: {max_sequences}          # the server's own limit (vLLM: --max-num-seqs)",
        f"    overhead_s: {m.overhead_s:.4f}",
    ]
    if e.api_key_env:
        lines.append(f"    api_key_env: {e.api_key_env}")
    return "\n".join(lines) + "\n"
