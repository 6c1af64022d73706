"""fc_attention (C) against the torch reference, and its point: a token's attention output does
not depend on how many tokens are computed beside it."""
from __future__ import annotations

import pytest
import torch

from fastcoder.kernels.attention import c_attention, c_paged_attention
from fastcoder.layers.attention import masked_attention
from fastcoder.engine.llm import LLM
from tests.helpers.tiny_gguf import write_tiny_qwen2


def reference(q, keys, values, key_positions, query_positions, window, scale):
    key_pos, query_pos = key_positions[None, :], query_positions[:, None]
    allowed = (key_pos <= query_pos) & (key_pos >= 0)
    if window:
        allowed &= key_pos > query_pos - window
    return masked_attention(q, keys, values, allowed, scale)


def kernel():
    found = c_attention()
    assert found is not None, "the C kernels are not built: run `pip install -e .`"
    return found


# K/V are float16, the caches' storage type (KV_DTYPE).
# head_dim 24 has no specialised AVX2 row: it runs the portable scalar row
@pytest.mark.parametrize("head_dim", [16, 24, 64, 128, 256])
@pytest.mark.parametrize("window", [0, 5])
def test_matches_torch_in_any_key_order(head_dim, window):
    gen = torch.Generator().manual_seed(head_dim + window)
    num_tokens, num_heads, num_kv_heads, num_keys = 6, 4, 2, 37
    q = torch.randn(num_tokens, num_heads, head_dim, generator=gen)
    # keys stored [slots, kv_heads, dim] as in the paged cache, read through a transposed view
    keys = torch.randn(num_keys, num_kv_heads, head_dim, generator=gen).half().transpose(0, 1)
    values = torch.randn(num_keys, num_kv_heads, head_dim, generator=gen).half().transpose(0, 1)
    key_positions = torch.randperm(num_keys, generator=gen)          # ring-like order
    key_positions[3] = -1                                             # an empty slot
    query_positions = torch.arange(num_keys - num_tokens, num_keys)
    got = kernel()(q, keys, values, key_positions, query_positions, window, 0.125)
    want = reference(q, keys, values, key_positions, query_positions, window, 0.125)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_rows_do_not_depend_on_the_batch():
    gen = torch.Generator().manual_seed(7)
    num_keys, head_dim = 700, 64
    q = torch.randn(33, 14, head_dim, generator=gen)
    keys = torch.randn(2, num_keys, head_dim, generator=gen).half()
    values = torch.randn(2, num_keys, head_dim, generator=gen).half()
    key_positions = torch.arange(num_keys)
    query_positions = torch.arange(num_keys - 33, num_keys)
    together = kernel()(q, keys, values, key_positions, query_positions, 0, 0.125)
    for t in (0, 17, 32):
        alone = kernel()(q[t:t + 1].contiguous(), keys, values, key_positions,
                         query_positions[t:t + 1], 0, 0.125)
        assert torch.equal(alone[0], together[t])


@pytest.mark.parametrize("num_threads", [1, 2, 3])
@pytest.mark.parametrize("num_heads, num_kv_heads, head_dim", [(4, 1, 256), (14, 2, 64), (3, 3, 24)])
def test_long_rows_split_over_threads_equal_the_batched_rows(num_threads, num_heads, num_kv_heads,
                                                              head_dim):
    """A decode token over 3000 keys (more than one key chunk) spreads its key chunks over the
    threads; in a batch of tokens each row runs on one thread. Both give the same bits, and
    match torch."""
    gen = torch.Generator().manual_seed(num_heads)
    num_keys = 3000
    q = torch.randn(5, num_heads, head_dim, generator=gen)
    keys = torch.randn(num_kv_heads, num_keys, head_dim, generator=gen).half()
    values = torch.randn(num_kv_heads, num_keys, head_dim, generator=gen).half()
    key_positions = torch.arange(num_keys)
    query_positions = torch.arange(num_keys - 5, num_keys)
    previous = torch.get_num_threads()
    torch.set_num_threads(num_threads)
    try:
        batched = kernel()(q, keys, values, key_positions, query_positions, 0, 0.0625)
        alone = kernel()(q[4:].contiguous(), keys, values, key_positions, query_positions[4:], 0,
                         0.0625)
    finally:
        torch.set_num_threads(previous)
    assert torch.equal(alone[0], batched[4])
    want = reference(q, keys, values, key_positions, query_positions, 0, 0.0625)
    torch.testing.assert_close(batched, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("window", [0, 40])
def test_paged_batch_equals_each_sequence_alone_bit_for_bit(window):
    """Two sequences in one paged call (keys scattered over shuffled slots) give exactly what the
    contiguous kernel gives for each sequence alone, and a ring-ordered copy gives the same."""
    gen = torch.Generator().manual_seed(window)
    num_heads, num_kv_heads, head_dim, num_slots = 4, 2, 64, 400
    k_cache = torch.randn(num_slots, num_kv_heads, head_dim, generator=gen).half()
    v_cache = torch.randn(num_slots, num_kv_heads, head_dim, generator=gen).half()
    lengths, new = (150, 90), (5, 1)                       # context after the step, new tokens
    slot_order = torch.randperm(num_slots, generator=gen)
    seq_slots = [slot_order[:150], slot_order[150:240]]
    q = torch.randn(sum(new), num_heads, head_dim, generator=gen)
    positions = torch.cat([torch.arange(n - m, n) for n, m in zip(lengths, new)])
    token_seq = torch.tensor([0] * new[0] + [1] * new[1])
    starts = torch.tensor([0, 150, 240])
    paged = c_paged_attention()(q, k_cache, v_cache, token_seq, starts, torch.cat(seq_slots),
                                positions, window, 0.125)
    row = 0
    for slots, n, m in zip(seq_slots, lengths, new):
        keys = k_cache[slots].transpose(0, 1)              # [kv_heads, n, dim], position order
        values = v_cache[slots].transpose(0, 1)
        alone = kernel()(q[row:row + m].contiguous(), keys, values, torch.arange(n),
                         positions[row:row + m], window, 0.125)
        assert torch.equal(paged[row:row + m], alone)
        rotated = torch.roll(torch.arange(n), 37)           # a ring: same keys, rotated order
        ring = kernel()(q[row:row + m].contiguous(), keys[:, rotated], values[:, rotated],
                        rotated, positions[row:row + m], window, 0.125)
        assert torch.equal(ring, alone)
        row += m


def test_decode_verify_and_prefill_logits_are_bit_identical(tmp_path):
    """What speculative decoding and the batched engine rely on: scoring the same tokens one at a
    time, as one verify chunk, or in the prefill gives the same logits bit for bit."""
    llm = LLM(str(write_tiny_qwen2(tmp_path / "tiny.gguf", context_length=1024)), threads=2)
    runner = llm.runner
    token_ids = [(7 * i) % 250 for i in range(700)]
    tail = 24
    prefill = runner.forward(token_ids, 0, all_logits=True)[-tail:]
    runner.forward(token_ids[:-tail], 0)
    verify = runner.forward(token_ids[-tail:], len(token_ids) - tail, all_logits=True)
    runner.forward(token_ids[:-tail], 0)
    one_by_one = torch.stack([runner.forward([t], len(token_ids) - tail + i)
                              for i, t in enumerate(token_ids[-tail:])])
    assert torch.equal(prefill, verify)
    assert torch.equal(verify, one_by_one)
