"""Paged KV-cache bookkeeping: block pool, block hashing, per-request block tables.

Pure Python (no torch): the runner owns the KV tensors and indexes them with the block ids
handed out here."""
from fastcoder.kv.block_pool import BlockPool, KVBlock
from fastcoder.kv.hashing import block_hashes, hash_block
from fastcoder.kv.hybrid_manager import HybridKVCacheManager
from fastcoder.kv.kv_cache_manager import KVCacheManager, PrefixCacheStats

__all__ = ["BlockPool", "HybridKVCacheManager", "KVBlock", "KVCacheManager", "PrefixCacheStats",
           "block_hashes", "hash_block"]
