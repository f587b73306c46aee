"""Sampling parameters of a request and the sampler: greedy, temperature, top-p, each request seeded alone."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import torch


class TokenConstraint(Protocol):
    """A per-request constraint on which tokens may come next (e.g. a JSON schema's grammar).

    The engine stays free of grammar libraries: codegen supplies an object with these three methods
    (plait.codegen.structured wraps llguidance), and the runner masks the row before sampling.
    """

    def allowed(self, vocab_size: int) -> torch.Tensor:
        """A bool [vocab_size] CPU tensor: True where the next token may be that id."""
        ...

    def accept(self, token_id: int) -> None:
        """Advance past the sampled token (one the mask allowed); raise when the grammar refuses it."""
        ...

    def is_finished(self) -> bool:
        """The grammar is complete and has taken its end token: the request stops here."""
        ...


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
    constraint: TokenConstraint | None = None  # one object per request: it holds the grammar's state

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


def constrain(logits: torch.Tensor, constraint: TokenConstraint) -> torch.Tensor:
    """One row of logits with the tokens the constraint forbids set to -inf (a copy)."""
    allowed = constraint.allowed(logits.shape[-1]).to(logits.device)
    if not bool(allowed.any()):
        raise RuntimeError("the token constraint allows no token at all; its grammar cannot continue")
    return logits.masked_fill(~allowed, float("-inf"))


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
