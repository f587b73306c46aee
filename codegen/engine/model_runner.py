"""The one owner of the device: the KV cache tensors, a step's inputs, the forward pass and sampling."""

from __future__ import annotations

import torch
import torch.distributed as dist

from plait.codegen.engine.cuda_graphs import DecodeGraphs
from plait.codegen.engine.model import AttentionPlan, PrefillSpan, Transformer
from plait.codegen.engine.sampling import constrain, sample
from plait.codegen.engine.scheduler import ScheduledChunk
from plait.codegen.engine.sequence import Sequence

DECODE_MODES = ("auto", "eager", "graph", "static")


class ModelRunner:
    """Args beyond the cache's size: decode_graphs is how decode-only steps run: "eager", "graph" (replayed
    from CUDA graphs, see cuda_graphs.py), "static" (the graphs' padded static shapes run eagerly: tests) or
    "auto" (graphs on a CUDA device without tensor parallelism, else eager). graph_max_batch: larger decode
    batches run eagerly (for where measurement shows graphs do not help)."""

    def __init__(self, model: Transformer, num_blocks: int, block_size: int, *, decode_graphs: str = "auto",
                 graph_max_batch: int = 64) -> None:
        if decode_graphs not in DECODE_MODES:
            raise ValueError(f"decode_graphs={decode_graphs!r} is not one of {DECODE_MODES}")
        self.model = model
        self.block_size = block_size
        param = next(model.parameters())
        self.device, self.dtype = param.device, param.dtype
        if decode_graphs == "auto":
            decode_graphs = "graph" if self.device.type == "cuda" and model.tp.size == 1 else "eager"
        self.decode_mode = decode_graphs
        # Rope frequencies live on the model's device: a host-to-device copy inside a captured graph fails.
        model.inv_freq = model.inv_freq.to(self.device)
        # Graphs pad batches with rows that write and read one spare block past the block manager's range.
        spare = 0 if decode_graphs == "eager" else 1
        shape = (num_blocks + spare, block_size, model.kv_heads_per_rank, model.config.head_dim)
        # Zeroed, not empty: padded reads land on unused slots, and NaN garbage there would poison SDPA.
        self.kv_caches = [(torch.zeros(shape, dtype=self.dtype, device=self.device),
                           torch.zeros(shape, dtype=self.dtype, device=self.device))
                          for _ in range(model.config.num_layers)]
        self.graphs: DecodeGraphs | None = None
        if decode_graphs != "eager":
            max_blocks = min(num_blocks, -(-model.config.max_position_embeddings // block_size))
            self.graphs = DecodeGraphs(model, self.kv_caches, block_size, max_blocks, spare_block=num_blocks,
                                       max_batch=graph_max_batch, mode=decode_graphs)

    def slots(self, seq: Sequence, start: int, end: int) -> list[int]:
        bs = self.block_size
        return [seq.block_table[p // bs] * bs + p % bs for p in range(start, end)]

    def write_imported_kv(self, seq: Sequence) -> None:
        """Copy an imported sequence's KV ([layers, tokens, kv heads, d] each) into its blocks."""
        assert seq.pending_kv is not None
        keys, values = seq.pending_kv["k"], seq.pending_kv["v"]
        index = torch.tensor(self.slots(seq, 0, keys.shape[1]), device=self.device)
        for layer, (k_cache, v_cache) in enumerate(self.kv_caches):
            k_cache.flatten(0, 1).index_copy_(0, index, keys[layer].to(self.device, self.dtype))
            v_cache.flatten(0, 1).index_copy_(0, index, values[layer].to(self.device, self.dtype))
        seq.pending_kv = None

    def read_kv(self, seq: Sequence) -> dict[str, torch.Tensor]:
        """seq's computed KV as [layers, tokens, kv heads, d] tensors on the CPU (for export)."""
        index = torch.tensor(self.slots(seq, 0, seq.num_computed_tokens), device=self.device)
        return {"k": torch.stack([k.flatten(0, 1)[index] for k, _ in self.kv_caches]).cpu(),
                "v": torch.stack([v.flatten(0, 1)[index] for _, v in self.kv_caches]).cpu()}

    def padded_tables(self, block_tables: list[list[int]], num_tokens: int) -> torch.Tensor:
        """The blocks holding the first num_tokens of each table, [tables, blocks]; short tables are padded
        with block 0, which the caller masks out."""
        blocks = -(-num_tokens // self.block_size)
        return torch.tensor([t[:blocks] + [0] * (blocks - len(t[:blocks])) for t in block_tables],
                            device=self.device)

    def plan(self, chunks: list[ScheduledChunk]) -> tuple[torch.Tensor, torch.Tensor, AttentionPlan]:
        """Flatten the step's tokens (decodes first) and say where each key goes and what each query reads."""
        ids: list[int] = []
        positions: list[int] = []
        slots: list[int] = []
        decodes = [c for c in chunks if c.num_tokens == 1]
        for c in decodes:
            pos = c.seq.num_computed_tokens
            ids.append(c.seq.token_ids[pos])
            positions.append(pos)
            slots += self.slots(c.seq, pos, pos + 1)
        spans = []
        for c in chunks:
            if c.num_tokens == 1:
                continue
            start, end = c.seq.num_computed_tokens, c.seq.num_computed_tokens + c.num_tokens
            row = len(ids)
            ids += c.seq.token_ids[start:end]
            positions += range(start, end)
            slots += self.slots(c.seq, start, end)
            if start == 0:
                spans.append(PrefillSpan(row, row + c.num_tokens, None, None))
            else:  # a later chunk, or after a prefix hit: query i (at start + i) sees keys 0..start + i
                q_pos = torch.arange(start, end, device=self.device)[:, None]
                mask = torch.arange(end, device=self.device)[None, :] <= q_pos
                spans.append(PrefillSpan(row, row + c.num_tokens, self.padded_tables([c.seq.block_table], end)[0],
                                         mask))
        decode_blocks = decode_mask = None
        if decodes:
            lengths = [c.seq.num_computed_tokens + 1 for c in decodes]
            decode_blocks = self.padded_tables([c.seq.block_table for c in decodes], max(lengths))
            padded = decode_blocks.shape[1] * self.block_size
            decode_mask = (torch.arange(padded, device=self.device)[None, :]
                           < torch.tensor(lengths, device=self.device)[:, None])[:, None, None, :]
        plan = AttentionPlan(slot_mapping=torch.tensor(slots, device=self.device), num_decodes=len(decodes),
                             decode_blocks=decode_blocks, decode_mask=decode_mask, prefills=spans)
        if decode_blocks is not None:
            shape = (decode_blocks.numel(), *self.kv_caches[0][0].shape[1:])
            plan.gather_buffers = (torch.empty(shape, dtype=self.dtype, device=self.device),
                                   torch.empty(shape, dtype=self.dtype, device=self.device))
        return torch.tensor(ids, device=self.device), torch.tensor(positions, device=self.device), plan

    @torch.inference_mode()
    def run(self, chunks: list[ScheduledChunk]) -> dict[Sequence, torch.Tensor]:
        """One forward pass over the step; logits (float32) of every sequence whose last token was computed."""
        for c in chunks:
            if c.seq.pending_kv is not None:
                self.write_imported_kv(c.seq)
        if (graphed := self.run_graphed(chunks)) is not None:
            return graphed
        ids, positions, plan = self.plan(chunks)
        order = [c for c in chunks if c.num_tokens == 1] + [c for c in chunks if c.num_tokens != 1]
        rows, sampling = [], []
        row = 0
        for c in order:
            row += c.num_tokens
            if c.seq.num_computed_tokens + c.num_tokens == c.seq.num_tokens:
                rows.append(row - 1)
                sampling.append(c.seq)
        if not chunks:
            return {}
        logits = self.model(ids, positions, plan, self.kv_caches, torch.tensor(rows, dtype=torch.long,
                                                                                device=self.device))
        return dict(zip(sampling, logits, strict=True))

    def run_graphed(self, chunks: list[ScheduledChunk]) -> dict[Sequence, torch.Tensor] | None:
        """A decode-only step from its CUDA graph bucket; None when the step is not one (prefill chunks, a
        batch or context past the largest bucket, or graphs off)."""
        graphs = self.graphs
        if graphs is None or not chunks or any(c.num_tokens != 1 for c in chunks):
            return None
        positions = [c.seq.num_computed_tokens for c in chunks]
        if not graphs.fits(len(chunks), -(-(max(positions) + 1) // self.block_size)):
            return None
        ids = [c.seq.token_ids[p] for c, p in zip(chunks, positions, strict=True)]
        slots = [self.slots(c.seq, p, p + 1)[0] for c, p in zip(chunks, positions, strict=True)]
        logits = graphs.run(ids, positions, slots, [c.seq.block_table for c in chunks])
        return dict(zip([c.seq for c in chunks], logits, strict=True))

    def sample(self, logits: dict[Sequence, torch.Tensor]) -> dict[Sequence, int]:
        """Pick each sequence's next token. Greedy rows go in one argmax; under tensor parallelism rank 0's
        picks are broadcast so every rank appends the same token whatever its floating-point noise."""
        seqs = list(logits)
        if not seqs:
            return {}
        logits = {s: row if s.params.constraint is None else constrain(row, s.params.constraint)
                  for s, row in logits.items()}
        greedy = [s for s in seqs if s.params.temperature == 0]
        picks: dict[Sequence, int] = {}
        if greedy:
            best = torch.stack([logits[s] for s in greedy]).argmax(dim=-1).tolist()
            picks.update(zip(greedy, best, strict=True))
        for s in seqs:
            if s.params.temperature != 0:
                picks[s] = sample(logits[s], s.params, s.generator)
        tp = self.model.tp
        if tp.size > 1:
            tokens = torch.tensor([picks[s] for s in seqs], device=self.device)  # NCCL moves GPU tensors only
            dist.broadcast(tokens, src=dist.get_global_rank(tp.group, 0), group=tp.group)  # type: ignore[arg-type]
            picks = dict(zip(seqs, tokens.tolist(), strict=True))
        return picks
