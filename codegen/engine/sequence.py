"""A request's state inside the engine: its tokens, how many have KV, and the blocks that hold it."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import torch

from plait.codegen.engine.sampling import SamplingParams, make_generator


class SequenceStatus(enum.Enum):
    WAITING = "waiting"  # queued for admission (new, preempted, or imported and not yet placed)
    RUNNING = "running"  # holds blocks; in the batch every step
    PARKED = "parked"  # prefill role: prompt done, KV held until export_kv
    FINISHED = "finished"


@dataclass(eq=False)
class Sequence:
    """Plain data; the scheduler and block manager change it, the model runner reads it."""

    request_id: int
    token_ids: list[int]
    num_prompt_tokens: int
    params: SamplingParams
    status: SequenceStatus = SequenceStatus.WAITING
    num_computed_tokens: int = 0  # tokens whose KV is in the cache
    prefill_target: int = 0  # num_tokens at admission: chunks below it count as prefill
    block_table: list[int] = field(default_factory=list)
    block_hashes: list[int] = field(default_factory=list)  # hash chain of this sequence's full blocks
    finish_reason: str | None = None
    text: str = ""  # detokenized output, kept only when stop strings are checked
    pending_kv: dict[str, torch.Tensor] | None = None  # imported KV, written into blocks at admission
    logits: list[torch.Tensor] = field(default_factory=list)  # per sampled token, when the engine keeps them
    generator: torch.Generator | None = None
    deadline: float | None = None  # earliest-deadline-first admission (`plait serve --policy edf`); None: FIFO

    def __post_init__(self) -> None:
        self.generator = make_generator(self.params)

    @property
    def num_tokens(self) -> int:
        return len(self.token_ids)

    @property
    def output_token_ids(self) -> list[int]:
        return self.token_ids[self.num_prompt_tokens:]

    def block_tokens(self, index: int, block_size: int) -> tuple[int, ...]:
        return tuple(self.token_ids[index * block_size:(index + 1) * block_size])
