"""BlockPool and block hashing: exact block ids, refcounts and free-queue (eviction) order."""
from __future__ import annotations

import pytest

from fastcoder.kv.block_pool import BlockPool
from fastcoder.kv.hashing import block_hashes, hash_block


def test_fresh_pool_reserves_null_block():
    pool = BlockPool(11)
    assert pool.num_free_blocks == 10
    assert pool.free_queue.block_ids() == list(range(1, 11))
    assert pool.null_block.block_id == 0
    assert pool.usage == 0.0


def test_allocate_pops_from_head_with_ref_one():
    pool = BlockPool(11)
    blocks = pool.allocate(3)
    assert [b.block_id for b in blocks] == [1, 2, 3]
    assert [b.ref_count for b in blocks] == [1, 1, 1]
    assert pool.free_queue.block_ids() == list(range(4, 11))
    assert pool.usage == pytest.approx(0.3)


def test_free_appends_in_given_order():
    pool = BlockPool(11)
    blocks = pool.allocate(3)
    pool.free(reversed(blocks))
    assert pool.free_queue.block_ids() == [4, 5, 6, 7, 8, 9, 10, 3, 2, 1]
    assert all(b.ref_count == 0 for b in blocks)
    assert pool.num_free_blocks == 10


def test_free_of_shared_block_keeps_it_out_of_queue():
    pool = BlockPool(11)
    (block,) = pool.allocate(1)
    pool.touch([block])
    assert block.ref_count == 2
    pool.free([block])
    assert block.ref_count == 1
    assert 1 not in pool.free_queue.block_ids()
    pool.free([block])
    assert pool.free_queue.block_ids()[-1] == 1


def test_touch_removes_cached_block_from_middle_of_queue():
    pool = BlockPool(11)
    blocks = pool.allocate(3)
    assert pool.cache_full_block(blocks[1], 1234)
    pool.free(reversed(blocks))
    assert pool.get_cached(1234) is blocks[1]
    pool.touch([blocks[1]])
    assert blocks[1].ref_count == 1
    assert pool.free_queue.block_ids() == [4, 5, 6, 7, 8, 9, 10, 3, 1]
    assert pool.num_free_blocks == 9


def test_allocate_evicts_lru_cached_block_hash():
    pool = BlockPool(4)                         # usable blocks 1, 2, 3
    a, b, c = pool.allocate(3)
    pool.cache_full_block(a, 11)
    pool.cache_full_block(b, 22)
    pool.free([b, a, c])                        # queue: 2, 1, 3
    (reused,) = pool.allocate(1)
    assert reused is b
    assert reused.block_hash is None
    assert pool.get_cached(22) is None
    assert pool.get_cached(11) is a             # not yet evicted
    assert pool.cached_blocks == {11: a}


def test_duplicate_hash_keeps_first_block():
    pool = BlockPool(11)
    a, b = pool.allocate(2)
    assert pool.cache_full_block(a, 7)
    assert not pool.cache_full_block(b, 7)
    assert b.block_hash is None
    assert pool.get_cached(7) is a


def test_allocate_too_many_raises_and_changes_nothing():
    pool = BlockPool(4)
    pool.allocate(1)
    with pytest.raises(ValueError):
        pool.allocate(3)
    assert pool.free_queue.block_ids() == [2, 3]


def test_double_free_raises():
    pool = BlockPool(4)
    blocks = pool.allocate(1)
    pool.free(blocks)
    with pytest.raises(ValueError):
        pool.free(blocks)


def test_null_block_is_ignored_by_touch_and_free():
    pool = BlockPool(4)
    pool.touch([pool.null_block])
    pool.free([pool.null_block])
    assert pool.null_block.ref_count == 0
    assert pool.free_queue.block_ids() == [1, 2, 3]


def test_reset_prefix_cache_only_when_idle():
    pool = BlockPool(4)
    (block,) = pool.allocate(1)
    pool.cache_full_block(block, 5)
    assert not pool.reset_prefix_cache()
    pool.free([block])
    assert pool.reset_prefix_cache()
    assert pool.get_cached(5) is None and block.block_hash is None


def test_hash_block_is_chained_and_deterministic():
    first = hash_block(None, (1, 2, 3, 4))
    assert first == hash_block(None, [1, 2, 3, 4])
    assert hash_block(first, (5, 6, 7, 8)) != hash_block(None, (5, 6, 7, 8))
    assert hash_block(None, (1, 2, 3, 4)) != hash_block(None, (1, 2, 3, 5))


def test_block_hashes_cover_full_blocks_only():
    hashes = block_hashes(list(range(10)), 4)
    assert len(hashes) == 2
    assert hashes[0] == hash_block(None, (0, 1, 2, 3))
    assert hashes[1] == hash_block(hashes[0], (4, 5, 6, 7))
    assert block_hashes([1, 2, 3], 4) == []
    assert block_hashes([4, 5, 6, 7], 4, parent_hash=hashes[0]) == [hashes[1]]
