"""Single-sequence KVCache with ring buffers for sliding-window layers: attention equals the
contiguous cache's for prefill chunks of any size, decode and rollback; memory is bounded by the
window; `can_resume` says exactly when the window before a position has left the ring."""
from __future__ import annotations

import pytest
import torch

from fastcoder.layers.kv_cache import KV_DTYPE, KVCache

WINDOW, SLACK, MAX_TOKENS = 8, 4, 64
KV_HEADS, HEADS, DIM = 2, 4, 8
WINDOWS = (WINDOW, 0, WINDOW)           # layers 0 and 2 local, layer 1 global


def caches() -> tuple[KVCache, KVCache]:
    ring = KVCache(3, MAX_TOKENS, KV_HEADS, DIM, WINDOWS, ring_slack=SLACK)
    # The same windows over full-length buffers: the ring is off when it would not be smaller.
    full = KVCache(3, MAX_TOKENS, KV_HEADS, DIM, WINDOWS, ring_slack=MAX_TOKENS)
    assert ring.ring is not None and full.ring is None
    return ring, full


def run_chunk(cache: KVCache, start: int, num: int, seed: int) -> list[torch.Tensor]:
    """All three layers on tokens start..start+num-1 with inputs fixed by (seed, position)."""
    outs = []
    positions = torch.arange(start, start + num)
    for layer, window in enumerate(WINDOWS):
        g = torch.Generator().manual_seed(seed * 1000 + layer)
        q = torch.randn(MAX_TOKENS, HEADS, DIM, generator=g)[positions]
        k = torch.randn(MAX_TOKENS, KV_HEADS, DIM, generator=g)[positions]
        v = torch.randn(MAX_TOKENS, KV_HEADS, DIM, generator=g)[positions]
        outs.append(cache.attend(layer, q, k, v, positions, DIM ** -0.5, window))
    return outs


@pytest.mark.parametrize("chunks", [[(0, 30)], [(0, 5), (5, 3), (8, 20), (28, 1), (29, 1)],
                                    [(0, 1)] * 1 + [(i, 1) for i in range(1, 40)],
                                    [(0, 11), (11, 2), (13, 9), (22, 13)]])
def test_ring_attention_equals_contiguous(chunks):
    ring, full = caches()
    for start, num in chunks:
        for a, b in zip(run_chunk(ring, start, num, 0), run_chunk(full, start, num, 0)):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_rollback_within_the_slack_recomputes_the_same():
    ring, full = caches()
    run_chunk(ring, 0, 30, 0)
    run_chunk(full, 0, 30, 0)
    # Overwrite positions 25.. with other inputs (rejected drafts), then roll back to 25 again.
    run_chunk(ring, 25, 5, 7)
    assert ring.can_resume(25)
    for a, b in zip(run_chunk(ring, 25, 3, 0), run_chunk(full, 25, 3, 0)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_can_resume_only_while_the_window_is_in_the_ring():
    ring, _ = caches()
    run_chunk(ring, 0, 40, 0)              # ring of 12 slots holds positions 28..39
    size = WINDOW + SLACK
    assert [p for p in range(41) if ring.can_resume(p)] == [0, *range(40 - size + WINDOW - 1, 41)]
    assert ring.can_resume(0)              # nothing before position 0 is needed


def test_local_layers_memory_is_bounded_by_the_window():
    ring, full = caches()
    bytes_per_token_layer = 2 * KV_HEADS * DIM * KV_DTYPE.itemsize
    assert ring.nbytes == bytes_per_token_layer * (MAX_TOKENS + 2 * (WINDOW + SLACK))
    assert full.nbytes == bytes_per_token_layer * 3 * MAX_TOKENS


def test_a_ring_layer_rejects_another_window():
    ring, _ = caches()
    with pytest.raises(ValueError):
        ring.attend(0, torch.zeros(1, HEADS, DIM), torch.zeros(1, KV_HEADS, DIM),
                    torch.zeros(1, KV_HEADS, DIM), torch.tensor([0]), 1.0, 0)
