"""HybridKVCacheManager: two KV groups for models that interleave global and sliding-window
layers (gemma3), each with its own block pool and per-request block table (vLLM v1
`HybridKVCacheCoordinator` with a full-attention and a sliding-window group).

Group 0 (global layers) keeps a request's whole history. Group 1 (local layers) gives pages that
fell out of the window back to its pool while the request runs, so a long request holds at most
about (window + chunk) / block_size local pages. Both groups hash full blocks by the same chained
keys in their own pool; a prefix hit is the longest one both groups can serve: every page of
the global group, and the local group's pages from the last window before the hit point (older
local pages are the null block, never read, so an evicted one cannot be "hit")."""
from __future__ import annotations

from typing import TYPE_CHECKING

from fastcoder.kv.block_pool import KVBlock
from fastcoder.kv.kv_cache_manager import KVCacheManager, PrefixCacheStats

if TYPE_CHECKING:
    from fastcoder.engine.request import Request

HybridHit = tuple[list[KVBlock], list[KVBlock]]     # (global group's blocks, local group's)


class HybridKVCacheManager:
    def __init__(self, num_full_blocks: int, num_local_blocks: int, block_size: int,
                 sliding_window: int, enable_prefix_caching: bool = True):
        if sliding_window < 1:
            raise ValueError(f"a hybrid KV cache needs a sliding window, got {sliding_window}")
        self.block_size = block_size
        self.sliding_window = sliding_window
        self.full = KVCacheManager(num_full_blocks, block_size, enable_prefix_caching)
        self.local = KVCacheManager(num_local_blocks, block_size, enable_prefix_caching,
                                    sliding_window)

    # -- gauges (summed over both pools) -------------------------------------------------
    @property
    def num_free_blocks(self) -> int:
        return self.full.num_free_blocks + self.local.num_free_blocks

    @property
    def num_total_blocks(self) -> int:
        return self.full.num_total_blocks + self.local.num_total_blocks

    @property
    def num_used_blocks(self) -> int:
        return self.num_total_blocks - self.num_free_blocks

    @property
    def usage(self) -> float:
        return self.num_used_blocks / self.num_total_blocks

    @property
    def token_capacity(self) -> int:
        """The global group bounds a request's length; the local one only its window."""
        return self.full.token_capacity

    @property
    def prefix_cache_stats(self) -> PrefixCacheStats:
        return self.full.prefix_cache_stats

    def block_table(self, request_id: str) -> list[int]:
        """The global layers' table."""
        return self.full.block_table(request_id)

    def group_block_tables(self, request_id: str) -> tuple[tuple[int, ...], ...]:
        """The local layers' table (null block 0 for released pages)."""
        return (tuple(self.local.block_table(request_id)),)

    # -- verbs ----------------------------------------------------------------------------
    def get_computed_blocks(self, request: Request) -> tuple[HybridHit, int]:
        full_blocks, _ = self.full.get_computed_blocks(request)
        local_blocks, num_hit = self.local.window_hit(request, len(full_blocks))
        return (full_blocks[:num_hit // self.block_size], local_blocks), num_hit

    def allocate_slots(self, request: Request, num_new_tokens: int,
                       computed_blocks: HybridHit | None = None) -> list[int] | None:
        """Allocates in both groups or in neither. Returns the global group's new block ids."""
        full_hit, local_hit = computed_blocks or ([], [])
        num_full = self.full.can_allocate(request, num_new_tokens, full_hit)
        num_local = self.local.can_allocate(request, num_new_tokens, local_hit)
        if num_full is None or num_local is None:
            return None
        self.local.commit_allocation(request, num_local, local_hit)
        return self.full.commit_allocation(request, num_full, full_hit)

    def cache_blocks(self, request: Request, num_computed_tokens: int) -> None:
        self.full.cache_blocks(request, num_computed_tokens)
        self.local.cache_blocks(request, num_computed_tokens)

    def free(self, request: Request) -> None:
        self.full.free(request)
        self.local.free(request)

    def trim(self, request: Request, num_tokens: int) -> None:
        self.full.trim(request, num_tokens)
        self.local.trim(request, num_tokens)

    def reset_prefix_cache(self) -> bool:
        return self.full.reset_prefix_cache() & self.local.reset_prefix_cache()
