"""The paged KV cache's allocator: fixed-size blocks, a block table per sequence, prefix reuse by hash chain.

A full block is keyed by hash(parent block's key, its token ids) and keeps its token ids to confirm a
hit. Blocks whose reference count drops to zero stay cached in an LRU free queue (vLLM's
FreeKVCacheBlockQueue, here an OrderedDict: O(1) pop from the front, removal by id) until a new
allocation evicts them, so a ReAct loop's next call finds its earlier prompt still there.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from plait.codegen.engine.sequence import Sequence


@dataclass(eq=False)
class Block:
    block_id: int
    ref_count: int = 0
    key: int | None = None  # hash chain key once the block is full and registered
    parent_key: int | None = None
    token_ids: tuple[int, ...] = ()


def chain_key(parent_key: int | None, token_ids: tuple[int, ...]) -> int:
    """Key of a full block: its tokens and everything before them (through the parent's key)."""
    return hash((parent_key, token_ids))


class BlockManager:
    """Allocates blocks to sequences and shares full blocks with equal prefixes."""

    def __init__(self, num_blocks: int, block_size: int, enable_prefix_reuse: bool = True) -> None:
        self.block_size = block_size
        self.enable_prefix_reuse = enable_prefix_reuse
        self.blocks = [Block(i) for i in range(num_blocks)]
        self.free: OrderedDict[int, None] = OrderedDict((i, None) for i in range(num_blocks))  # front = evict first
        self.cached: dict[int, int] = {}  # chain key -> block id

    @property
    def num_free_blocks(self) -> int:
        return len(self.free)

    def blocks_for(self, num_tokens: int) -> int:
        return -(-num_tokens // self.block_size)

    def prefix_hits(self, seq: Sequence) -> list[int]:
        """Cached blocks matching seq's leading full blocks. The last prompt token is never served from
        cache: the engine needs its logits, so at least one token is always computed."""
        if not self.enable_prefix_reuse:
            return []
        hits: list[int] = []
        parent: int | None = None
        for index in range((seq.num_tokens - 1) // self.block_size):
            tokens = seq.block_tokens(index, self.block_size)
            block_id = self.cached.get(chain_key(parent, tokens))
            if block_id is None:
                break
            block = self.blocks[block_id]
            if block.token_ids != tokens or block.parent_key != parent:
                break  # a hash collision, not the same prefix
            hits.append(block_id)
            parent = block.key
        return hits

    def can_allocate(self, seq: Sequence, hits: list[int]) -> bool:
        # A hit whose count is zero sits in the free queue, so reviving it uses a free slot too.
        revived = sum(1 for b in hits if self.blocks[b].ref_count == 0)
        return self.blocks_for(seq.num_tokens) - len(hits) + revived <= self.num_free_blocks

    def allocate(self, seq: Sequence, hits: list[int]) -> None:
        """Give seq blocks for all its tokens, reusing `hits` for its leading ones."""
        assert not seq.block_table, f"request {seq.request_id} already holds blocks"
        for block_id in hits:
            block = self.blocks[block_id]
            if block.ref_count == 0:
                del self.free[block_id]
            block.ref_count += 1
            seq.block_table.append(block_id)
            seq.block_hashes.append(block.key)  # type: ignore[arg-type]
        seq.num_computed_tokens = len(hits) * self.block_size
        self._grow(seq, self.blocks_for(seq.num_tokens) - len(hits))

    def try_grow_to(self, seq: Sequence, num_tokens: int) -> bool:
        """Make seq's block table cover num_tokens; False (and nothing taken) when too few blocks are free."""
        need = self.blocks_for(num_tokens) - len(seq.block_table)
        if need > self.num_free_blocks:
            return False
        self._grow(seq, need)
        return True

    def _grow(self, seq: Sequence, count: int) -> None:
        for _ in range(count):
            block_id, _ = self.free.popitem(last=False)  # least recently freed
            block = self.blocks[block_id]
            if block.key is not None and self.cached.get(block.key) == block_id:
                del self.cached[block.key]  # evicted: its contents are about to be overwritten
            block.key, block.parent_key, block.token_ids = None, None, ()
            block.ref_count = 1
            seq.block_table.append(block_id)

    def register_full_blocks(self, seq: Sequence) -> None:
        """Key the blocks that became full of computed KV, so later sequences can share them."""
        if not self.enable_prefix_reuse:
            return
        full = min(seq.num_computed_tokens, seq.num_tokens) // self.block_size
        for index in range(len(seq.block_hashes), full):
            block = self.blocks[seq.block_table[index]]
            parent = seq.block_hashes[-1] if seq.block_hashes else None
            tokens = seq.block_tokens(index, self.block_size)
            key = chain_key(parent, tokens)
            seq.block_hashes.append(key)
            if block.key is None and key not in self.cached:
                block.key, block.parent_key, block.token_ids = key, parent, tokens
                self.cached[key] = block.block_id

    def free_sequence(self, seq: Sequence) -> None:
        """Drop seq's references. Tail blocks go to the front of the free queue (evicted first: they are
        the least shared), blocks with no key go there too (nothing can hit them)."""
        for block_id in reversed(seq.block_table):
            block = self.blocks[block_id]
            block.ref_count -= 1
            if block.ref_count == 0:
                self.free[block_id] = None
                if block.key is None:
                    self.free.move_to_end(block_id, last=False)
        seq.block_table.clear()
        seq.block_hashes.clear()
        seq.num_computed_tokens = 0
