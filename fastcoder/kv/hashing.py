"""Chained hashes of full KV blocks: a block's key covers its tokens and, through the parent
hash, every token before it, so equal keys mean equal prefixes (and equal KV contents).

blake2b rather than Python's `hash()`: a prefix-cache hit on a colliding key would silently
serve another prompt's KV, and tuple hashing is neither collision-resistant nor meant to be."""
from __future__ import annotations

import hashlib
from array import array
from collections.abc import Sequence

_ROOT = b"fastcoder-kv-root"


def hash_block(parent_hash: int | None, token_ids: Sequence[int]) -> int:
    """128-bit key of one block given the key of the block before it (None for the first)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(_ROOT if parent_hash is None else parent_hash.to_bytes(16, "little"))
    h.update(array("q", token_ids).tobytes())
    return int.from_bytes(h.digest(), "little")


def block_hashes(token_ids: Sequence[int], block_size: int,
                 parent_hash: int | None = None) -> list[int]:
    """Keys of the full blocks of `token_ids` (a trailing partial block gets none)."""
    hashes: list[int] = []
    for start in range(0, len(token_ids) - block_size + 1, block_size):
        parent_hash = hash_block(parent_hash, token_ids[start:start + block_size])
        hashes.append(parent_hash)
    return hashes
