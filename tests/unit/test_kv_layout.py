"""plan_kv_layout: one group (and the old sizing) for dense models; for gemma3's interleaved
layers a global and a local group, the local pool sized by the windows of the running requests
and capped at half of the budget."""
from __future__ import annotations

from fastcoder.engine.kv_layout import plan_kv_layout
from fastcoder.kv.hybrid_manager import HybridKVCacheManager
from fastcoder.kv.kv_cache_manager import KVCacheManager

MB = 2**20
GEMMA_WINDOWS = tuple(0 if (i + 1) % 6 == 0 else 512 for i in range(18))


def test_dense_model_is_one_group_sized_as_before():
    layout = plan_kv_layout((0,) * 24, 1024, 512 * MB, 16, 8192, 16, 512)
    assert layout.group_layers == (tuple(range(24)),)
    assert layout.group_num_blocks == (512 * MB // (16 * 24 * 1024),)     # 1365
    assert type(layout.make_manager(True)) is KVCacheManager


def test_gemma3_gets_a_global_and_a_capped_local_group():
    layout = plan_kv_layout(GEMMA_WINDOWS, 2048, 512 * MB, 16, 8192, 16, 512)
    assert layout.group_layers == ((5, 11, 17), tuple(i for i in range(18) if (i + 1) % 6))
    # Wanted: 16 requests x (ceil(511 / 16) + 2) pages + 32 for the chunks + null = 577 pages of
    # 480 KiB; half of 512 MiB holds 546 of them. The global pool gets the rest in 96 KiB pages.
    assert layout.group_num_blocks == (2731, 546)
    manager = layout.make_manager(True)
    assert isinstance(manager, HybridKVCacheManager)
    assert manager.token_capacity == 2730 * 16 and manager.num_total_blocks == 2730 + 545


def test_small_budget_still_fits_one_request():
    layout = plan_kv_layout(GEMMA_WINDOWS, 2048, 1 * MB, 16, 1024, 4, 256)
    # One request: its window's 34 pages + 16 for a chunk + null; the global pool covers 1024.
    assert layout.group_num_blocks == (65, 34 + 16 + 1)


def test_every_layer_local_is_one_sliding_group():
    layout = plan_kv_layout((256,) * 4, 1024, 8 * MB, 16, 4096, 4, 64)
    assert layout.group_layers == ((0, 1, 2, 3),) and layout.sliding_window == 256
    assert layout.make_manager(True).sliding_window == 256
