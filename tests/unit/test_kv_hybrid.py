"""HybridKVCacheManager (global + sliding-window groups, block size 4, window 8): exact block
tables as pages leave the window, a bounded local footprint, prefix hits that need only the last
window of local pages, evicted local pages never hit, all-or-nothing allocation."""
from __future__ import annotations

from fastcoder.engine.request import Request
from fastcoder.kv.hybrid_manager import HybridKVCacheManager
from fastcoder.sampling_params import SamplingParams

BS, WINDOW = 4, 8


def make_request(request_id: str, token_ids) -> Request:
    return Request(request_id, list(token_ids), SamplingParams(temperature=0))


def admit(manager: HybridKVCacheManager, request: Request) -> int:
    """First schedule of the whole prompt, then mark it computed; returns the hit in tokens."""
    blocks, num_hit = manager.get_computed_blocks(request)
    assert manager.allocate_slots(request, request.num_tokens - num_hit, blocks) is not None
    request.num_computed_tokens = request.num_tokens
    manager.cache_blocks(request, request.num_computed_tokens)
    return num_hit


def decode(manager: HybridKVCacheManager, request: Request, token: int) -> None:
    request.append_output_token(token)
    assert manager.allocate_slots(request, 1) is not None
    request.num_computed_tokens += 1
    manager.cache_blocks(request, request.num_computed_tokens)


def tables(manager: HybridKVCacheManager, rid: str) -> tuple[list[int], list[int]]:
    return manager.block_table(rid), list(manager.group_block_tables(rid)[0])


def test_local_pages_out_of_the_window_go_back_to_the_pool():
    manager = HybridKVCacheManager(21, 6, BS, WINDOW)
    a = make_request("a", range(16))
    assert admit(manager, a) == 0
    assert tables(manager, "a") == ([1, 2, 3, 4], [1, 2, 3, 4])
    a.append_output_token(16)
    # The query at 16 sees keys 9..16: local pages 0 and 1 (positions 0..7) are released.
    assert manager.allocate_slots(a, 1) == [5]
    assert tables(manager, "a") == ([1, 2, 3, 4, 5], [0, 0, 3, 4, 5])
    assert manager.local.pool.free_queue.block_ids() == [2, 1]
    a.num_computed_tokens += 1
    manager.cache_blocks(a, 17)
    max_local = 0
    for token in range(17, 60):
        decode(manager, a, token)
        full, local = tables(manager, "a")
        first_key = a.num_computed_tokens - WINDOW
        assert all(local[p // BS] != 0 for p in range(first_key, a.num_computed_tokens))
        assert 0 not in full
        max_local = max(max_local, manager.local.num_used_blocks)
    assert max_local <= WINDOW // BS + 1               # bounded: 3 pages, however long
    assert len(manager.full.block_table("a")) == 15    # the global group keeps everything
    manager.free(a)
    assert manager.num_free_blocks == 20 + 5


def test_resent_conversation_hits_both_groups():
    manager = HybridKVCacheManager(21, 11, BS, WINDOW)
    a = make_request("a", range(24))
    admit(manager, a)
    manager.free(a)                # global pages 1..6 cached, local pages 1..6 cached
    b = make_request("b", [*range(24), 99])
    (full_hit, local_hit), num_hit = manager.get_computed_blocks(b)
    assert num_hit == 24
    assert [blk.block_id for blk in full_hit] == [1, 2, 3, 4, 5, 6]
    # Queries from 24 on see keys 17.. : local pages 4 and 5 (positions 16..23) only.
    assert [blk.block_id for blk in local_hit] == [0, 0, 0, 0, 5, 6]
    assert manager.allocate_slots(b, 1, (full_hit, local_hit)) == [7]
    assert tables(manager, "b") == ([1, 2, 3, 4, 5, 6, 7], [0, 0, 0, 0, 5, 6, 7])
    assert [manager.local.pool.blocks[i].ref_count for i in range(1, 8)] == [0, 0, 0, 0, 1, 1, 1]
    assert manager.prefix_cache_stats.hits == 24


def test_evicted_local_page_is_never_hit():
    manager = HybridKVCacheManager(21, 9, BS, WINDOW)
    a = make_request("a", range(24))
    admit(manager, a)
    manager.free(a)
    assert manager.local.pool.free_queue.block_ids() == [7, 8, 6, 5, 4, 3, 2, 1]
    # A filler takes 3 local pages: 7, 8 (never used) and 6, a's last page (positions 20..23).
    filler = make_request("f", [500 + i for i in range(12)])
    assert manager.local.allocate_slots(filler, 12) == [7, 8, 6]
    b = make_request("b", [*range(24), 99])
    (full_hit, local_hit), num_hit = manager.get_computed_blocks(b)
    # A hit at 24 would need local page 5 (positions 20..23, evicted); one at 20 needs pages 3
    # and 4 (positions 13..19), still cached.
    assert num_hit == 20
    assert [blk.block_id for blk in full_hit] == [1, 2, 3, 4, 5]
    assert [blk.block_id for blk in local_hit] == [0, 0, 0, 4, 5]


def test_hit_ends_where_a_whole_window_of_local_pages_is_cached():
    manager = HybridKVCacheManager(21, 7, BS, WINDOW)
    a = make_request("a", range(24))
    admit(manager, a)              # local pages 1..6 (the pool's 6 usable pages)
    manager.free(a)
    b = make_request("b", [*range(24), 99])
    filler = make_request("f", [500 + i for i in range(16)])
    assert manager.local.allocate_slots(filler, 8) == [6, 5]   # a's pages for positions 16..23
    # Ends 24 and 20 need page index 4 (positions 16..19); end 16 needs indices 2, 3 (9..15).
    (full_hit, local_hit), num_hit = manager.get_computed_blocks(b)
    assert num_hit == 16
    assert [blk.block_id for blk in local_hit] == [0, 0, 3, 4]
    assert [blk.block_id for blk in full_hit] == [1, 2, 3, 4]
    filler.num_computed_tokens = 8
    assert manager.local.allocate_slots(filler, 8) == [4, 3]   # now indices 2, 3 are gone too
    # End 12 needs index 2; end 8 needs indices 0, 1 (positions 1..7), both cached.
    (full_hit, local_hit), num_hit = manager.get_computed_blocks(b)
    assert num_hit == 8
    assert [blk.block_id for blk in local_hit] == [1, 2]


def test_allocation_is_all_or_nothing():
    manager = HybridKVCacheManager(21, 4, BS, WINDOW)        # 3 usable local pages
    a = make_request("a", range(16))                         # needs 4 local pages at once
    assert manager.allocate_slots(a, 16) is None
    assert manager.full.num_free_blocks == 20 and manager.local.num_free_blocks == 3
    assert "a" not in manager.full.req_to_blocks and "a" not in manager.local.req_to_blocks
    assert manager.allocate_slots(a, 12) == [1, 2, 3]          # a smaller chunk fits
    a.num_computed_tokens = 12
    manager.cache_blocks(a, 12)
    # The next chunk releases local page 0 (positions 0..3) first, then fits.
    assert manager.allocate_slots(a, 4) == [4]
    assert tables(manager, "a") == ([1, 2, 3, 4], [0, 2, 3, 1])
