"""KVCacheManager: exact block ids for prefix hits, free-queue order after free, LRU eviction,
allocation failure, and sliding-window release (block size 4, 11 blocks unless noted)."""
from __future__ import annotations

import pytest

from fastcoder.engine.request import Request
from fastcoder.kv.kv_cache_manager import KVCacheManager
from fastcoder.sampling_params import SamplingParams

BS = 4


def make_request(request_id: str, token_ids) -> Request:
    return Request(request_id, list(token_ids), SamplingParams(temperature=0))


def admit(manager: KVCacheManager, request: Request) -> list[int]:
    """First schedule of a whole prompt, then mark it computed (what the scheduler does)."""
    blocks, num_hit = manager.get_computed_blocks(request)
    new_ids = manager.allocate_slots(request, request.num_tokens - num_hit, blocks)
    assert new_ids is not None
    request.num_computed_tokens = request.num_tokens
    manager.cache_blocks(request, request.num_computed_tokens)
    return new_ids


def test_fresh_request_gets_first_blocks():
    manager = KVCacheManager(11, BS)
    request = make_request("a", range(10))
    assert manager.get_computed_blocks(request) == ([], 0)
    assert manager.allocate_slots(request, 10) == [1, 2, 3]
    assert manager.block_table("a") == [1, 2, 3]
    assert manager.num_free_blocks == 7
    assert manager.usage == pytest.approx(0.3)


def test_shared_prefix_hits_full_blocks_and_shares_refcounts():
    manager = KVCacheManager(11, BS)
    a = make_request("a", range(10))
    admit(manager, a)
    pool = manager.pool
    assert pool.blocks[1].block_hash is not None and pool.blocks[2].block_hash is not None
    assert pool.blocks[3].block_hash is None            # partial block: never cached

    b = make_request("b", [*range(8), 100, 101])
    blocks, num_hit = manager.get_computed_blocks(b)
    assert [blk.block_id for blk in blocks] == [1, 2]
    assert num_hit == 8
    assert manager.allocate_slots(b, 2, blocks) == [4]
    assert manager.block_table("b") == [1, 2, 4]
    assert [pool.blocks[i].ref_count for i in (1, 2, 3, 4)] == [2, 2, 1, 1]
    stats = manager.prefix_cache_stats
    assert (stats.queries, stats.hits) == (20, 8)

    manager.free(a)                                     # tail first: 3, then 2 and 1 still held
    assert pool.free_queue.block_ids() == [5, 6, 7, 8, 9, 10, 3]
    manager.free(b)
    assert pool.free_queue.block_ids() == [5, 6, 7, 8, 9, 10, 3, 4, 2, 1]
    assert manager.num_free_blocks == 10


def test_lru_eviction_breaks_the_chain_at_the_evicted_block():
    manager = KVCacheManager(11, BS)
    a = make_request("a", range(10))
    admit(manager, a)
    manager.free(a)                                     # queue: 4..10, 3, 2, 1
    filler = make_request("filler", [500 + i for i in range(32)])
    assert manager.allocate_slots(filler, 32) == [4, 5, 6, 7, 8, 9, 10, 3]
    assert manager.allocate_slots(make_request("x", [900]), 1) == [2]   # evicts a's 2nd block
    assert manager.pool.free_queue.block_ids() == [1]

    again = make_request("again", range(10))
    blocks, num_hit = manager.get_computed_blocks(again)
    assert [blk.block_id for blk in blocks] == [1]
    assert num_hit == 4


def test_hit_never_covers_the_whole_prompt():
    manager = KVCacheManager(11, BS)
    admit(manager, make_request("a", range(12)))        # blocks 1, 2, 3 all full and cached
    exact = make_request("b", range(8))
    blocks, num_hit = manager.get_computed_blocks(exact)
    assert [blk.block_id for blk in blocks] == [1]
    assert num_hit == 4                                 # the last block is recomputed
    assert manager.allocate_slots(exact, 4, blocks) == [4]
    longer = make_request("c", range(9))
    blocks, num_hit = manager.get_computed_blocks(longer)
    assert [blk.block_id for blk in blocks] == [1, 2] and num_hit == 8


def test_allocate_failure_changes_nothing():
    manager = KVCacheManager(5, BS)                     # 4 usable blocks
    big = make_request("big", range(17))
    assert manager.allocate_slots(big, 17) is None
    assert manager.num_free_blocks == 4
    assert manager.block_table("big") == []
    assert "big" not in manager.req_to_blocks
    assert manager.prefix_cache_stats.queries == 0


def test_allocate_counts_unreferenced_hit_blocks_against_free_space():
    manager = KVCacheManager(6, BS)                     # 5 usable blocks
    a = make_request("a", range(9))
    admit(manager, a)                                   # blocks 1, 2 cached, 3 partial
    manager.free(a)
    order = manager.pool.free_queue.block_ids()
    assert order == [4, 5, 3, 2, 1]
    b = make_request("b", range(25))                    # hits 1, 2 (free), needs 5 more blocks
    blocks, num_hit = manager.get_computed_blocks(b)
    assert num_hit == 8
    assert manager.allocate_slots(b, 17, blocks) is None
    assert manager.pool.free_queue.block_ids() == order
    assert all(blk.ref_count == 0 for blk in blocks)
    c = make_request("c", range(20))                    # hits 1, 2, needs 3 more: fits exactly
    blocks, _ = manager.get_computed_blocks(c)
    assert manager.allocate_slots(c, 12, blocks) == [4, 5, 3]
    assert manager.block_table("c") == [1, 2, 4, 5, 3]
    assert manager.num_free_blocks == 0


def test_decode_allocates_a_block_only_when_the_last_is_full():
    manager = KVCacheManager(11, BS)
    request = make_request("a", range(4))
    assert manager.allocate_slots(request, 4) == [1]
    request.num_computed_tokens = 4
    request.append_output_token(50)
    assert manager.allocate_slots(request, 1) == [2]
    request.num_computed_tokens = 5
    request.append_output_token(51)
    assert manager.allocate_slots(request, 1) == []
    assert manager.block_table("a") == [1, 2]


def test_blocks_are_cached_only_once_computed():
    manager = KVCacheManager(11, BS)
    a = make_request("a", range(10))
    manager.allocate_slots(a, 10)
    b = make_request("b", range(10))
    assert manager.get_computed_blocks(b) == ([], 0)    # a's KV is not written yet
    manager.cache_blocks(a, 5)                          # first chunk of 5 tokens ran
    blocks, num_hit = manager.get_computed_blocks(b)
    assert [blk.block_id for blk in blocks] == [1] and num_hit == 4


def test_output_tokens_extend_the_cached_chain():
    manager = KVCacheManager(11, BS)
    a = make_request("a", range(6))
    admit(manager, a)
    b = make_request("b", range(9))

    def decode(token: int) -> None:
        a.append_output_token(token)
        assert manager.allocate_slots(a, 1) is not None
        a.num_computed_tokens += 1
        manager.cache_blocks(a, a.num_computed_tokens)

    decode(6)
    a.append_output_token(7)                            # sampled, not computed yet
    assert manager.get_computed_blocks(b)[1] == 4
    assert manager.allocate_slots(a, 1) == []
    a.num_computed_tokens += 1
    manager.cache_blocks(a, a.num_computed_tokens)      # block 2 (tokens 4..7) now full
    blocks, num_hit = manager.get_computed_blocks(b)
    assert [blk.block_id for blk in blocks] == [1, 2] and num_hit == 8


def test_identical_prompts_admitted_together_do_not_merge():
    manager = KVCacheManager(11, BS)
    a, b = make_request("a", range(8)), make_request("b", range(8))
    manager.allocate_slots(a, 8)
    manager.allocate_slots(b, 8)
    manager.cache_blocks(a, 8)
    manager.cache_blocks(b, 8)
    assert manager.block_table("b") == [3, 4]
    c = make_request("c", range(9))
    blocks, _ = manager.get_computed_blocks(c)
    assert [blk.block_id for blk in blocks] == [1, 2]
    manager.free(a)
    manager.free(b)
    assert manager.pool.free_queue.block_ids() == [5, 6, 7, 8, 9, 10, 2, 1, 4, 3]


def test_prefix_caching_disabled():
    manager = KVCacheManager(11, BS, enable_prefix_caching=False)
    admit(manager, make_request("a", range(10)))
    assert manager.pool.cached_blocks == {}
    assert manager.get_computed_blocks(make_request("b", range(10))) == ([], 0)
    assert manager.prefix_cache_stats.queries == 0


def test_sliding_window_releases_blocks_out_of_the_window():
    window = 8
    manager = KVCacheManager(11, BS, sliding_window=window)
    request = make_request("a", range(16))
    assert manager.allocate_slots(request, 16) == [1, 2, 3, 4]
    request.num_computed_tokens = 16
    manager.cache_blocks(request, 16)
    request.append_output_token(16)
    # The query at position 16 sees keys 9..16: blocks 0 and 1 (positions 0..7) are out.
    assert manager.allocate_slots(request, 1) == [5]
    assert manager.block_table("a") == [0, 0, 3, 4, 5]
    assert manager.pool.free_queue.block_ids()[-2:] == [2, 1]
    max_used = 0
    for step in range(40):
        request.num_computed_tokens += 1
        request.append_output_token(17 + step)
        assert manager.allocate_slots(request, 1) is not None
        table = manager.block_table("a")
        first_key = request.num_computed_tokens - window + 1
        assert all(table[p // BS] != 0 for p in range(first_key, request.num_computed_tokens + 1))
        max_used = max(max_used, manager.num_used_blocks)
    assert max_used <= window // BS + 2
    assert len(manager.block_table("a")) == 15
    manager.free(request)
    assert manager.num_free_blocks == 10


def test_sliding_window_prefix_hit_keeps_only_window_blocks():
    manager = KVCacheManager(11, BS, sliding_window=4)
    a = make_request("a", range(16))
    admit(manager, a)
    assert manager.block_table("a") == [1, 2, 3, 4]     # nothing computed yet: all in use
    manager.free(a)
    b = make_request("b", range(17))
    blocks, num_hit = manager.get_computed_blocks(b)
    assert num_hit == 16
    new_ids = manager.allocate_slots(b, 1, blocks)
    assert new_ids == [5]
    # Query at 16 sees keys 13..16: only blocks 3 (positions 12..15) and the new one stay.
    assert manager.block_table("b") == [0, 0, 0, 4, 5]
    assert manager.pool.blocks[4].ref_count == 1
    assert all(manager.pool.blocks[i].ref_count == 0 for i in (1, 2, 3))
