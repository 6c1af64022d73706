"""BlockPool: fixed-size KV pages with reference counts, an LRU free queue and a hash -> block
map for prefix reuse (vLLM v1 `block_pool.py` / `FreeKVCacheBlockQueue`).

A block with ref_count 0 sits in the free queue but keeps its hash until it is handed out again,
so a freed prefix can still be hit; allocation pops the least recently freed block first."""
from __future__ import annotations

from collections.abc import Iterable, Iterator


class KVBlock:
    """One page of the KV cache: `block_size` token slots in every layer."""

    __slots__ = ("block_id", "ref_count", "block_hash", "prev_free", "next_free")

    def __init__(self, block_id: int):
        self.block_id = block_id
        self.ref_count = 0
        self.block_hash: int | None = None         # set once the block is full and computed
        self.prev_free: KVBlock | None = None      # free-queue links; None when not queued
        self.next_free: KVBlock | None = None

    def __repr__(self) -> str:
        hashed = self.block_hash is not None
        return f"KVBlock(id={self.block_id}, ref={self.ref_count}, hashed={hashed})"


class FreeBlockQueue:
    """Doubly linked list between two sentinels: O(1) popleft, append and remove-from-middle."""

    def __init__(self, blocks: Iterable[KVBlock]):
        self._head = KVBlock(-1)
        self._tail = KVBlock(-1)
        self._head.next_free = self._tail
        self._tail.prev_free = self._head
        self.num_free_blocks = 0
        for block in blocks:
            self.append(block)

    def popleft(self) -> KVBlock:
        block = self._head.next_free
        if block is self._tail:
            raise IndexError("no free KV blocks")
        self.remove(block)
        return block

    def remove(self, block: KVBlock) -> None:
        prev, nxt = block.prev_free, block.next_free
        if prev is None or nxt is None:
            raise ValueError(f"{block!r} is not in the free queue")
        prev.next_free = nxt
        nxt.prev_free = prev
        block.prev_free = block.next_free = None
        self.num_free_blocks -= 1

    def append(self, block: KVBlock) -> None:
        last = self._tail.prev_free
        last.next_free = block
        block.prev_free = last
        block.next_free = self._tail
        self._tail.prev_free = block
        self.num_free_blocks += 1

    def __iter__(self) -> Iterator[KVBlock]:
        block = self._head.next_free
        while block is not self._tail:
            yield block
            block = block.next_free

    def block_ids(self) -> list[int]:
        """Eviction order, first evicted first (for tests and debugging)."""
        return [block.block_id for block in self]


class BlockPool:
    """`num_blocks` pages; block 0 is the null block (a placeholder in block tables for pages
    a request no longer holds) and is never handed out, so `num_blocks - 1` are usable."""

    def __init__(self, num_blocks: int):
        if num_blocks < 2:
            raise ValueError(f"need at least 2 KV blocks (one is reserved), got {num_blocks}")
        self.num_blocks = num_blocks
        self.blocks = [KVBlock(i) for i in range(num_blocks)]
        self.null_block = self.blocks[0]
        self.free_queue = FreeBlockQueue(self.blocks[1:])
        self.cached_blocks: dict[int, KVBlock] = {}

    @property
    def num_free_blocks(self) -> int:
        """Blocks that can be handed out now (cached-but-unreferenced ones included)."""
        return self.free_queue.num_free_blocks

    @property
    def num_usable_blocks(self) -> int:
        return self.num_blocks - 1

    @property
    def usage(self) -> float:
        """Fraction of usable blocks referenced by some request, in [0, 1]."""
        return 1.0 - self.num_free_blocks / self.num_usable_blocks

    def allocate(self, num: int) -> list[KVBlock]:
        """Pops `num` blocks in LRU order with ref_count 1; a reused block loses its cache entry."""
        if num > self.num_free_blocks:
            raise ValueError(f"asked for {num} KV blocks, {self.num_free_blocks} free")
        blocks = []
        for _ in range(num):
            block = self.free_queue.popleft()
            self._evict_hash(block)
            block.ref_count = 1
            blocks.append(block)
        return blocks

    def touch(self, blocks: Iterable[KVBlock]) -> None:
        """Takes a reference on blocks (a prefix-cache hit), pulling free ones off the queue."""
        for block in blocks:
            if block is self.null_block:
                continue
            if block.ref_count == 0:
                self.free_queue.remove(block)
            block.ref_count += 1

    def free(self, blocks: Iterable[KVBlock]) -> None:
        """Drops a reference; blocks reaching 0 join the queue tail in the order given, so pass
        a request's blocks tail first and its shared prefix is evicted last."""
        for block in blocks:
            if block is self.null_block:
                continue
            if block.ref_count <= 0:
                raise ValueError(f"double free of {block!r}")
            block.ref_count -= 1
            if block.ref_count == 0:
                self.free_queue.append(block)

    def get_cached(self, block_hash: int) -> KVBlock | None:
        return self.cached_blocks.get(block_hash)

    def cache_full_block(self, block: KVBlock, block_hash: int) -> bool:
        """Registers a full, computed block under its hash. Returns False (and leaves the block
        unhashed) when another block already holds that hash: duplicates are not merged, block
        tables only grow, and the first copy keeps serving hits."""
        if block is self.null_block or block.block_hash is not None:
            return False
        if block_hash in self.cached_blocks:
            return False
        block.block_hash = block_hash
        self.cached_blocks[block_hash] = block
        return True

    def _evict_hash(self, block: KVBlock) -> None:
        if block.block_hash is not None:
            if self.cached_blocks.get(block.block_hash) is block:
                del self.cached_blocks[block.block_hash]
            block.block_hash = None

    def reset_prefix_cache(self) -> bool:
        """Forgets every cached hash; only possible when no block is referenced."""
        if self.num_free_blocks != self.num_usable_blocks:
            return False
        for block in self.blocks:
            block.block_hash = None
        self.cached_blocks.clear()
        return True
