"""LLMEngine: requests in, tokens out, one step at a time (nano-vllm's split: Scheduler, BlockManager, ModelRunner).

Roles (DESIGN.md, "The serving model"): *unified* runs prefill and decode of the same requests with
continuous batching and chunked prefill; *prefill* computes a prompt and its first token, then parks
the sequence until `export_kv` hands its KV cache over; *decode* takes sequences through `import_kv`
and continues them.
"""

from __future__ import annotations

import itertools
from collections import abc
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch
import torch.distributed as dist

from plait.codegen.engine.block_manager import BlockManager
from plait.codegen.engine.config import ModelConfig
from plait.codegen.engine.model import Transformer
from plait.codegen.engine.model_runner import ModelRunner
from plait.codegen.engine.sampling import SamplingParams
from plait.codegen.engine.scheduler import Scheduler
from plait.codegen.engine.sequence import Sequence, SequenceStatus
from plait.codegen.engine.tokenizer import TextTokenizer

ROLES = ("unified", "prefill", "decode")
KV_FORMAT = "plait-kv/1"


class StepOutput(NamedTuple):
    """One token of one request, as the step that made it returns it (streaming)."""

    request_id: int
    token_id: int
    finished: bool  # this engine is done with the request (finished, or parked for export in the prefill role)


@dataclass
class RequestOutput:
    request_id: int
    prompt_token_ids: list[int]
    token_ids: list[int]
    finish_reason: str | None
    text: str | None = None
    random_weights: bool = False  # the model's weights were random: the tokens are noise
    logits: list[torch.Tensor] = field(default_factory=list)  # one row per token, when keep_logits


class LLMEngine:
    """A replica's engine. Under tensor parallelism every rank of `tp_group` runs one, fed the same requests.

    Args:
        model: built by weights.load_checkpoint or weights.random_model (for this tp_group).
        block_size: tokens per KV block. num_blocks: blocks in the cache (None: fill kv_cache_bytes,
            capped at max_batch sequences of max_position_embeddings tokens).
        max_batch: sequences running at once. token_budget: prompt tokens computed per step beside the
            decodes of every running sequence (chunked prefill). keep_logits: keep every sampled row's logits in the outputs (tests).
        decode_graphs: "auto" (CUDA graphs for decode-only steps on a GPU without tensor parallelism, else
            eager), "eager", "graph" or "static" (see ModelRunner). graph_max_batch: decode batches above it
            run eagerly (default: max_batch).
    """

    def __init__(self, model: Transformer, config: ModelConfig, *, block_size: int = 16,
                 num_blocks: int | None = None, max_batch: int = 64, token_budget: int = 512,
                 role: str = "unified", tp_group: dist.ProcessGroup | None = None,
                 tokenizer: TextTokenizer | None = None, enable_prefix_reuse: bool = True,
                 keep_logits: bool = False, kv_cache_bytes: int = 256 << 20, decode_graphs: str = "auto",
                 graph_max_batch: int | None = None) -> None:
        if role not in ROLES:
            raise ValueError(f"LLMEngine role {role!r} is not one of {ROLES}")
        if tp_group is not None and model.tp.group is not tp_group:
            raise ValueError("the model was built for another tensor-parallel group than tp_group. To fix: "
                             "pass the same group to load_checkpoint/random_model and to LLMEngine")
        if model.config != config:
            raise ValueError("the model was built from another ModelConfig than the engine was given")
        self.model, self.config, self.role = model, config, role
        self.tokenizer, self.keep_logits = tokenizer, keep_logits
        param = next(model.parameters())
        if num_blocks is None:
            block_bytes = config.kv_bytes_per_token(param.element_size()) // model.tp.size * block_size
            per_sequence = -(-config.max_position_embeddings // block_size)
            num_blocks = max(1, min(kv_cache_bytes // block_bytes, max_batch * per_sequence))
        self.block_size, self.num_blocks = block_size, num_blocks
        self.block_manager = BlockManager(num_blocks, block_size, enable_prefix_reuse)
        self.scheduler = Scheduler(self.block_manager, max_batch, token_budget)
        self.runner = ModelRunner(model, num_blocks, block_size, decode_graphs=decode_graphs,
                                  graph_max_batch=min(max_batch, graph_max_batch or max_batch))
        self.sequences: dict[int, Sequence] = {}
        self._ids = itertools.count()
        self.prefill_tokens_computed = 0
        self.decode_tokens_computed = 0
        self.steps = 0

    @property
    def random_weights(self) -> bool:
        return self.model.random_weights

    @property
    def preemptions(self) -> int:
        return self.scheduler.preemptions

    @property
    def prefix_hit_tokens(self) -> int:
        return self.scheduler.prefix_hit_tokens

    def _check_fits(self, num_tokens: int, max_tokens: int, what: str) -> None:
        final = num_tokens + max_tokens
        if final > self.config.max_position_embeddings:
            raise ValueError(f"{what} of {num_tokens} tokens plus max_tokens={max_tokens} exceeds the model's "
                             f"{self.config.max_position_embeddings} positions. To fix: shorten it or lower max_tokens")
        if self.block_manager.blocks_for(final) > self.num_blocks:
            raise ValueError(f"{what} of {num_tokens} tokens plus max_tokens={max_tokens} needs more KV blocks "
                             f"than the whole cache holds ({self.num_blocks} x {self.block_size} tokens). "
                             "To fix: raise num_blocks")

    def add_request(self, prompt: list[int] | str, params: SamplingParams | None = None,
                    deadline: float | None = None) -> int:
        """Queue a prompt (token ids, or text when the engine has a tokenizer); returns its request id. With a
        `deadline` (any clock, compared only with other deadlines) it is admitted earliest deadline first."""
        if self.role == "decode":
            raise ValueError("a decode engine takes sequences through import_kv, not add_request")
        params = params or SamplingParams()
        if isinstance(prompt, str):
            if self.tokenizer is None:
                raise ValueError("a text prompt needs the engine's tokenizer. To fix: LLMEngine(..., tokenizer=...)")
            prompt_ids = self.tokenizer.encode(prompt)
        else:
            prompt_ids = list(prompt)
        if not prompt_ids:
            raise ValueError("a prompt needs at least one token")
        if max(prompt_ids) >= self.config.vocab_size or min(prompt_ids) < 0:
            raise ValueError(f"prompt token ids must lie in [0, {self.config.vocab_size}), "
                             f"got {min(prompt_ids)}..{max(prompt_ids)}")
        if params.stop and self.tokenizer is None:
            raise ValueError("stop strings need the engine's tokenizer. To fix: LLMEngine(..., tokenizer=...)")
        self._check_fits(len(prompt_ids), params.max_tokens, "the prompt")
        seq = Sequence(next(self._ids), prompt_ids, len(prompt_ids), params, deadline=deadline)
        self.sequences[seq.request_id] = seq
        self.scheduler.add(seq)
        return seq.request_id

    def has_unfinished(self) -> bool:
        return self.scheduler.has_work()

    def step(self) -> list[StepOutput]:
        """Schedule, run the model once, sample: every token made in this step, in batch order."""
        chunks = self.scheduler.schedule()
        if not chunks:
            if self.scheduler.waiting:
                raise RuntimeError(f"no sequence can be admitted: {self.block_manager.num_free_blocks} KV blocks "
                                   "free and parked sequences hold the rest. To fix: export_kv the parked ones")
            return []
        logits = self.runner.run(chunks)
        for c in chunks:
            if c.seq.num_computed_tokens < c.seq.prefill_target:
                self.prefill_tokens_computed += c.num_tokens
            else:
                self.decode_tokens_computed += c.num_tokens
            c.seq.num_computed_tokens += c.num_tokens
            self.block_manager.register_full_blocks(c.seq)
        self.steps += 1
        outputs = []
        for seq, token in self.runner.sample(logits).items():
            if self.keep_logits:
                seq.logits.append(logits[seq].cpu())
            seq.token_ids.append(token)
            if seq.params.constraint is not None:
                seq.params.constraint.accept(token)
            reason = self._finish_reason(seq, token)
            if reason is not None:
                seq.finish_reason = reason
                self.scheduler.retire(seq, SequenceStatus.FINISHED)
            elif self.role == "prefill":
                self.scheduler.retire(seq, SequenceStatus.PARKED)
            outputs.append(StepOutput(seq.request_id, token, seq.status is not SequenceStatus.RUNNING))
        return outputs

    def _finish_reason(self, seq: Sequence, token: int) -> str | None:
        params = seq.params
        if params.constraint is not None and params.constraint.is_finished():
            return "stop"  # the grammar is complete; its end token (EOS) closed it
        if (token in self.config.eos_token_ids and not params.ignore_eos) or token in params.stop_token_ids:
            return "stop"
        if params.stop:
            assert self.tokenizer is not None
            seq.text = self.tokenizer.decode(seq.output_token_ids)
            hits = [i for i in (seq.text.find(s) for s in params.stop) if i >= 0]
            if hits:
                seq.text = seq.text[:min(hits)]
                return "stop"
        if len(seq.output_token_ids) >= params.max_tokens or seq.num_tokens >= self.config.max_position_embeddings:
            return "length"
        return None

    def output(self, request_id: int) -> RequestOutput:
        """A request's output so far. A finished request's is handed out once: the engine then forgets it."""
        seq = self.sequences[request_id]
        if seq.status is SequenceStatus.FINISHED:
            del self.sequences[request_id]
        text = None
        if self.tokenizer is not None:
            text = seq.text if seq.params.stop else self.tokenizer.decode(seq.output_token_ids)
        return RequestOutput(request_id, seq.token_ids[:seq.num_prompt_tokens], seq.output_token_ids,
                             seq.finish_reason, text, self.random_weights, seq.logits)

    def abort(self, request_id: int) -> None:
        """Drop a request wherever it is (waiting, running or parked): it makes no more tokens and its blocks
        are freed (a client went away, a deadline passed). An unknown or already handed-out id is ignored."""
        seq = self.sequences.pop(request_id, None)
        if seq is None:
            return
        if seq.status is SequenceStatus.RUNNING:
            self.scheduler.retire(seq, SequenceStatus.FINISHED)
        else:
            if seq in self.scheduler.waiting:
                self.scheduler.waiting.remove(seq)
            if seq.status is SequenceStatus.PARKED:
                self.block_manager.free_sequence(seq)
            seq.status = SequenceStatus.FINISHED
        seq.finish_reason = seq.finish_reason or "abort"

    def stats(self) -> dict[str, int]:
        """Cheap counters for a server's metrics: sequences running and waiting, KV blocks, work done."""
        return {"running": len(self.scheduler.running), "waiting": len(self.scheduler.waiting),
                "kv_blocks_used": self.num_blocks - self.block_manager.num_free_blocks,
                "kv_blocks": self.num_blocks, "steps": self.steps, "preemptions": self.preemptions,
                "prefill_tokens": self.prefill_tokens_computed, "decode_tokens": self.decode_tokens_computed}

    def generate(self, prompts: abc.Sequence[list[int] | str],
                 params: SamplingParams | list[SamplingParams] | None = None) -> list[RequestOutput]:
        """Run prompts to the end (in the prefill role: to their first token) and return them in order."""
        per_prompt = params if isinstance(params, list) else [params or SamplingParams()] * len(prompts)
        ids = [self.add_request(p, sp) for p, sp in zip(prompts, per_prompt, strict=True)]
        pending = set(ids)
        while pending:
            for out in self.step():
                if out.finished:
                    pending.discard(out.request_id)
        return [self.output(i) for i in ids]

    def export_kv(self, request_id: int) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        """Hand a parked sequence's KV cache over: a small header and k, v tensors [layers, tokens, kv heads,
        head_dim] (this rank's heads under tensor parallelism). Frees its blocks here."""
        seq = self.sequences.get(request_id)
        if seq is None or seq.status is not SequenceStatus.PARKED:
            state = "unknown" if seq is None else seq.status.value
            raise ValueError(f"request {request_id} is {state}, not parked: only a prefill engine's finished "
                             "prompts can be exported")
        tensors = self.runner.read_kv(seq)
        header = {"format": KV_FORMAT, "model": self.config.name, "arch": self.config.arch,
                  "num_layers": self.config.num_layers, "num_kv_heads": self.model.kv_heads_per_rank,
                  "head_dim": self.config.head_dim, "dtype": str(self.runner.dtype).removeprefix("torch."),
                  "length": seq.num_computed_tokens, "token_ids": list(seq.token_ids),
                  "num_prompt_tokens": seq.num_prompt_tokens, "tp_rank": self.model.tp.rank,
                  "tp_size": self.model.tp.size}
        self.block_manager.free_sequence(seq)
        del self.sequences[request_id]
        return header, tensors

    def import_kv(self, header: dict[str, Any], tensors: dict[str, torch.Tensor],
                  params: SamplingParams | None = None, deadline: float | None = None) -> int:
        """Continue a sequence another engine prefilled; returns its request id here (`deadline`: as add_request's)."""
        if self.role == "prefill":
            raise ValueError("a prefill engine exports KV; import it into a decode or unified engine")
        ours = {"format": KV_FORMAT, "model": self.config.name, "arch": self.config.arch,
                "num_layers": self.config.num_layers, "num_kv_heads": self.model.kv_heads_per_rank,
                "head_dim": self.config.head_dim, "dtype": str(self.runner.dtype).removeprefix("torch."),
                "tp_size": self.model.tp.size}
        wrong = {k: (header.get(k), v) for k, v in ours.items() if header.get(k) != v}
        if wrong:
            raise ValueError("the KV header does not match this engine: " + ", ".join(
                f"{k} is {theirs!r}, here {mine!r}" for k, (theirs, mine) in wrong.items()))
        length, token_ids = header["length"], list(header["token_ids"])
        expected = (self.config.num_layers, length, self.model.kv_heads_per_rank, self.config.head_dim)
        for name in ("k", "v"):
            if tuple(tensors[name].shape) != expected:
                raise ValueError(f"KV tensor {name!r} has shape {tuple(tensors[name].shape)}, the header says "
                                 f"{expected}")
        if length != len(token_ids) - 1:
            raise ValueError(f"the KV header's length {length} should be one less than its {len(token_ids)} "
                             "token ids (the prefill engine's first token has no KV yet)")
        params = params or SamplingParams()
        num_prompt = header["num_prompt_tokens"]
        self._check_fits(num_prompt, params.max_tokens, "the imported sequence")
        seq = Sequence(next(self._ids), token_ids, num_prompt, params, pending_kv=tensors, deadline=deadline)
        self.sequences[seq.request_id] = seq
        self.scheduler.add(seq)
        return seq.request_id
