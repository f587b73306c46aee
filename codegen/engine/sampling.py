"""Sampling parameters of a request and the sampler: greedy, temperature, top-p, each request seeded alone."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class SamplingParams:
    """How one request picks its tokens and when it stops.

    temperature 0 is greedy. top_p keeps the smallest set of tokens whose probability adds up to top_p.
    seed makes sampling repeatable per request (its own torch.Generator), whatever else is in the batch.
    stop: strings that end the output (not included in it; needs the engine's tokenizer).
    stop_token_ids: token ids that end it besides the model's EOS (the stop token is kept in the ids).
    """

    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 16
    stop: list[str] = field(default_factory=list)
    stop_token_ids: list[int] = field(default_factory=list)
    seed: int | None = None
    ignore_eos: bool = False  # benchmarks generate a fixed number of tokens whatever the model says

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError(f"SamplingParams.temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"SamplingParams.top_p must be in (0, 1], got {self.top_p}")
        if self.max_tokens < 1:
            raise ValueError(f"SamplingParams.max_tokens must be >= 1, got {self.max_tokens}")


def make_generator(params: SamplingParams) -> torch.Generator | None:
    """A request's own generator when it samples with a seed; None for greedy or unseeded sampling."""
    if params.temperature == 0 or params.seed is None:
        return None
    return torch.Generator().manual_seed(params.seed)


def sample(logits: torch.Tensor, params: SamplingParams, generator: torch.Generator | None) -> int:
    """Pick one token from one row of logits (float32 on any device)."""
    if params.temperature == 0:
        return int(torch.argmax(logits).item())
    probs = torch.softmax(logits.float().cpu() / params.temperature, dim=-1)
    if params.top_p < 1:
        sorted_probs, order = torch.sort(probs, descending=True)
        # Drop a token when the tokens ranked above it already reach top_p; the top token always stays.
        drop = torch.cumsum(sorted_probs, 0) - sorted_probs >= params.top_p
        sorted_probs[drop] = 0
        probs = torch.zeros_like(probs).scatter_(0, order, sorted_probs)
    return int(torch.multinomial(probs, 1, generator=generator).item())
