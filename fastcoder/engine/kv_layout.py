"""How the batching engine splits its KV memory into groups of layers and block pools.

Models with only global layers (or only local ones) get one group. A model that interleaves them
(gemma3) gets two: the global layers, whose pages a request keeps for its whole history, and the
sliding-window layers, whose pages are freed once out of the window. The local pool is sized so
that every running request's window fits (it is never what limits admission) but takes at most
half of the budget; the global pool gets the rest."""
from __future__ import annotations

from dataclasses import dataclass

from fastcoder.kv.hybrid_manager import HybridKVCacheManager
from fastcoder.kv.kv_cache_manager import KVCacheManager


@dataclass(frozen=True, slots=True)
class KVLayout:
    group_layers: tuple[tuple[int, ...], ...]   # layer ids per group; global layers first
    group_num_blocks: tuple[int, ...]            # blocks per group's pool (null block included)
    block_size: int                              # tokens per block
    sliding_window: int                          # tokens; of the local group, 0 = none

    def make_manager(self, enable_prefix_caching: bool
                     ) -> KVCacheManager | HybridKVCacheManager:
        if len(self.group_layers) == 2:
            return HybridKVCacheManager(*self.group_num_blocks, self.block_size,
                                        self.sliding_window, enable_prefix_caching)
        return KVCacheManager(self.group_num_blocks[0], self.block_size, enable_prefix_caching,
                              self.sliding_window)


def plan_kv_layout(layer_windows: tuple[int, ...], bytes_per_token_layer: int, kv_cache_bytes: int,
                   block_size: int, max_model_len: int, max_num_seqs: int,
                   max_num_batched_tokens: int) -> KVLayout:
    """`layer_windows`: each layer's sliding window in tokens (0 = global)."""
    def ceil_div(a: int, b: int) -> int:
        return -(-a // b)

    global_layers = tuple(i for i, w in enumerate(layer_windows) if not w)
    local_layers = tuple(i for i, w in enumerate(layer_windows) if w)
    windows = {w for w in layer_windows if w}
    if len(windows) > 1:
        raise ValueError(f"local layers must share one window, got {sorted(windows)}")
    window = windows.pop() if windows else 0
    min_blocks = ceil_div(max_model_len, block_size) + 1          # one full request + null
    if not global_layers or not local_layers:
        block_bytes = block_size * len(layer_windows) * bytes_per_token_layer
        num_blocks = max(kv_cache_bytes // block_bytes, min_blocks)
        return KVLayout((tuple(range(len(layer_windows))),), (num_blocks,), block_size, window)

    # A request holds the pages of its last window - 1 tokens plus its chunk (each may straddle
    # one more page); the chunks of all running requests share the token budget.
    window_blocks = ceil_div(window - 1, block_size) + 2
    min_local = window_blocks + ceil_div(max_num_batched_tokens, block_size) + 1
    wanted_local = max_num_seqs * window_blocks + ceil_div(max_num_batched_tokens, block_size) + 1
    local_block_bytes = block_size * len(local_layers) * bytes_per_token_layer
    num_local = max(min_local, min(wanted_local, kv_cache_bytes // 2 // local_block_bytes))
    global_block_bytes = block_size * len(global_layers) * bytes_per_token_layer
    num_global = max((kv_cache_bytes - num_local * local_block_bytes) // global_block_bytes,
                     min_blocks)
    return KVLayout((global_layers, local_layers), (num_global, num_local), block_size, window)
