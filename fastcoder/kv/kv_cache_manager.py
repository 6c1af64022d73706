"""KVCacheManager: per-request block tables over a BlockPool, with prefix caching of full
blocks and optional sliding-window release (vLLM v1 `kv_cache_manager.py` and
`SingleTypeKVCacheManager`, one KV group).

Blocks are registered in the prefix cache only once their tokens have been computed
(`cache_blocks`, called after the forward), so a hit never points at KV that is still being
written in the same step."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastcoder.kv.block_pool import BlockPool, KVBlock
from fastcoder.kv.hashing import hash_block

if TYPE_CHECKING:
    from fastcoder.engine.request import Request

# Tokens per KV block. Small, unlike vLLM's GPU default of 16: the attention kernel addresses
# every key through its own slot, so block size costs nothing there, while a prefix-cache hit
# ends at a block boundary. An agent resending a 2,000-token conversation recomputed up to 15
# cached tokens with 16 (0.5B: 306 ms to first token); with 4, at most 3 (92 ms). Throughput
# at 16 streams was unchanged (46.3/46.8 vs 45.1/46.5 tok/s, alternating runs).
DEFAULT_BLOCK_SIZE = 4


@dataclass(frozen=True, slots=True)
class PrefixCacheStats:
    queries: int          # tokens of every admitted request (counted once per admission)
    hits: int             # of those, tokens served from the prefix cache

    @property
    def hit_rate(self) -> float:
        return self.hits / self.queries if self.queries else 0.0


class KVCacheManager:
    """One KV group. `sliding_window` (tokens, 0 = off) may only be set when every layer of the
    group uses that window: pages that fall out of it are given back to the pool. Models that mix
    local and global layers (gemma3) use HybridKVCacheManager: one of these per kind of layer."""

    def __init__(self, num_blocks: int, block_size: int, enable_prefix_caching: bool = True,
                 sliding_window: int = 0):
        if block_size < 1:
            raise ValueError(f"block_size must be >= 1, got {block_size}")
        if sliding_window < 0:
            raise ValueError(f"sliding_window must be >= 0, got {sliding_window}")
        self.block_size = block_size
        self.enable_prefix_caching = enable_prefix_caching
        self.sliding_window = sliding_window
        self.pool = BlockPool(num_blocks)
        self.req_to_blocks: dict[str, list[KVBlock]] = {}
        self._req_to_hashes: dict[str, list[int]] = {}     # full-block keys computed so far
        self._num_cached_blocks: dict[str, int] = {}       # leading blocks already registered
        self._num_queries = 0
        self._num_hits = 0

    # -- gauges ---------------------------------------------------------------------------
    @property
    def num_free_blocks(self) -> int:
        return self.pool.num_free_blocks

    @property
    def num_total_blocks(self) -> int:
        """Usable blocks (the null block excluded)."""
        return self.pool.num_usable_blocks

    @property
    def num_used_blocks(self) -> int:
        return self.num_total_blocks - self.num_free_blocks

    @property
    def usage(self) -> float:
        return self.pool.usage

    @property
    def prefix_cache_stats(self) -> PrefixCacheStats:
        return PrefixCacheStats(self._num_queries, self._num_hits)

    @property
    def token_capacity(self) -> int:
        """Tokens one request can hold at most (the scheduler checks max_model_len fits)."""
        return self.num_total_blocks * self.block_size

    def block_table(self, request_id: str) -> list[int]:
        return [block.block_id for block in self.req_to_blocks.get(request_id, ())]

    def group_block_tables(self, request_id: str) -> tuple[tuple[int, ...], ...]:
        """Block tables of further KV groups: none, this manager is one group."""
        return ()

    # -- verbs ----------------------------------------------------------------------------
    def get_computed_blocks(self, request: Request) -> tuple[list[KVBlock], int]:
        """Longest run of cached full blocks that prefixes the request, and its length in
        tokens. At least one token is always left to compute so the step yields logits. Takes
        no references: pass the blocks to `allocate_slots` straight away."""
        if not self.enable_prefix_caching:
            return [], 0
        hashes = self._hashes(request)
        max_hit_blocks = (request.num_tokens - 1) // self.block_size
        blocks: list[KVBlock] = []
        for block_hash in hashes[:max_hit_blocks]:
            block = self.pool.get_cached(block_hash)
            if block is None:
                break
            blocks.append(block)
        return blocks, len(blocks) * self.block_size

    def allocate_slots(self, request: Request, num_new_tokens: int,
                       computed_blocks: list[KVBlock] | None = None) -> list[int] | None:
        """Makes room for `num_new_tokens` more tokens after `request.num_computed_tokens`
        (plus the prefix hit `computed_blocks`, only on a request's first allocation). Returns
        the ids of the newly allocated blocks, or None when the pool is short; then nothing
        changes (a sliding-window request may still have released pages it no longer needs)."""
        num_new_blocks = self.can_allocate(request, num_new_tokens, computed_blocks)
        if num_new_blocks is None:
            return None
        return self.commit_allocation(request, num_new_blocks, computed_blocks)

    def can_allocate(self, request: Request, num_new_tokens: int,
                     computed_blocks: list[KVBlock] | None = None) -> int | None:
        """Blocks `allocate_slots` would take from the pool, or None when it is short. Releases
        the request's pages that fell out of the window first (no query needs them either way)."""
        computed_blocks = computed_blocks or []
        rid = request.request_id
        blocks = self.req_to_blocks.get(rid, [])
        if blocks and computed_blocks:
            raise ValueError(f"prefix hit for {rid!r}, which already holds blocks")
        num_computed = request.num_computed_tokens + len(computed_blocks) * self.block_size
        if blocks:
            self._release_out_of_window(blocks, num_computed)
        num_required = -(-(num_computed + num_new_tokens) // self.block_size)
        num_new_blocks = max(0, num_required - len(blocks) - len(computed_blocks))
        # Hit blocks with no other user sit in the free queue: touching them uses up free slots.
        num_evictable_hits = sum(1 for block in computed_blocks
                                 if block.ref_count == 0 and block is not self.pool.null_block)
        if num_new_blocks + num_evictable_hits > self.pool.num_free_blocks:
            return None
        return num_new_blocks

    def commit_allocation(self, request: Request, num_new_blocks: int,
                          computed_blocks: list[KVBlock] | None = None) -> list[int]:
        """The allocation `can_allocate` approved: takes the hit and `num_new_blocks` blocks."""
        computed_blocks = computed_blocks or []
        rid = request.request_id
        if rid not in self.req_to_blocks:
            self.req_to_blocks[rid] = []
            self._num_cached_blocks[rid] = len(computed_blocks)
            if self.enable_prefix_caching:
                self._num_queries += request.num_tokens
                self._num_hits += len(computed_blocks) * self.block_size
        blocks = self.req_to_blocks[rid]
        self.pool.touch(computed_blocks)
        blocks.extend(computed_blocks)
        new_blocks = self.pool.allocate(num_new_blocks)
        blocks.extend(new_blocks)
        if computed_blocks:
            num_computed = request.num_computed_tokens + len(computed_blocks) * self.block_size
            self._release_out_of_window(blocks, num_computed)
        return [block.block_id for block in new_blocks]

    def window_hit(self, request: Request, max_blocks: int) -> tuple[list[KVBlock], int]:
        """The longest prefix hit of at most `max_blocks` blocks whose pages that later queries
        can see are all cached, and its length in tokens. Pages before the window are given as
        the null block: they may be evicted already and are never read (vLLM v1
        `SlidingWindowManager.find_longest_cache_hit`)."""
        if not self.enable_prefix_caching:
            return [], 0
        bs, window = self.block_size, self.sliding_window
        cached = [self.pool.get_cached(h) for h in self._hashes(request)[:max_blocks]]
        num_blocks = len(cached)
        while num_blocks > 0:
            # Queries from position num_blocks * bs on see keys from there - window + 1 on.
            first = max(0, num_blocks * bs - window + 1) // bs if window else 0
            missing = [i for i in range(first, num_blocks) if cached[i] is None]
            if not missing:
                return [self.pool.null_block] * first + cached[first:num_blocks], num_blocks * bs
            num_blocks = missing[-1]                 # a hit must end before the missing page
        return [], 0

    def cache_blocks(self, request: Request, num_computed_tokens: int) -> None:
        """Registers the request's blocks that are full within its first `num_computed_tokens`
        (already computed) tokens under their chained hash."""
        if not self.enable_prefix_caching:
            return
        rid = request.request_id
        blocks = self.req_to_blocks.get(rid)
        if blocks is None:
            return
        num_full = min(num_computed_tokens // self.block_size, len(blocks))
        start = self._num_cached_blocks[rid]
        if num_full <= start:
            return
        hashes = self._hashes(request, num_full)
        for i in range(start, num_full):
            self.pool.cache_full_block(blocks[i], hashes[i])
        self._num_cached_blocks[rid] = num_full

    def free(self, request: Request) -> None:
        """Gives back all of the request's blocks, tail first (its prefix stays cached longest)."""
        rid = request.request_id
        blocks = self.req_to_blocks.pop(rid, None)
        self._req_to_hashes.pop(rid, None)
        self._num_cached_blocks.pop(rid, None)
        if blocks:
            self.pool.free(reversed(blocks))

    def trim(self, request: Request, num_tokens: int) -> None:
        """Gives back the request's tail blocks past its first `num_tokens` tokens (speculative
        drafts that were rejected). Those blocks were never hashed: `cache_blocks` only
        registers blocks full of computed, accepted tokens."""
        blocks = self.req_to_blocks.get(request.request_id)
        num_keep = -(-num_tokens // self.block_size)
        if blocks and len(blocks) > num_keep:
            tail = blocks[num_keep:]
            del blocks[num_keep:]
            self.pool.free(reversed(tail))

    def reset_prefix_cache(self) -> bool:
        return self.pool.reset_prefix_cache()

    # -- internals ------------------------------------------------------------------------
    def _hashes(self, request: Request, num_blocks: int | None = None) -> list[int]:
        """Chained keys of the request's first `num_blocks` full blocks (all full ones if
        None), extended incrementally as the request grows."""
        hashes = self._req_to_hashes.setdefault(request.request_id, [])
        token_ids = request.all_token_ids
        bs = self.block_size
        target = len(token_ids) // bs if num_blocks is None else num_blocks
        parent = hashes[-1] if hashes else None
        for i in range(len(hashes), target):
            parent = hash_block(parent, token_ids[i * bs:(i + 1) * bs])
            hashes.append(parent)
        return hashes

    def _release_out_of_window(self, blocks: list[KVBlock], num_computed_tokens: int) -> None:
        """Swaps pages no query from `num_computed_tokens` on can see for the null block.
        A query at position p attends to keys in (p - sliding_window, p]."""
        if not self.sliding_window:
            return
        first_useful_token = num_computed_tokens - self.sliding_window + 1
        num_skipped = max(0, min(first_useful_token // self.block_size, len(blocks)))
        released = []
        for i in range(num_skipped - 1, -1, -1):      # tail first, like `free`
            if blocks[i] is self.pool.null_block:
                break                                 # everything before was released earlier
            released.append(blocks[i])
            blocks[i] = self.pool.null_block
        self.pool.free(released)
