"""fc_rope_store against the torch ops it replaces: rotated q, and K/V in the fp16 cache, bit
for bit (NEOX and interleaved layouts, contiguous and slot-major caches, fp16 edge values)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from fastcoder.kernels.rope import c_rope_store
from fastcoder.layers.rotary import RotaryEmbedding


@pytest.fixture(scope="module")
def kernel():
    k = c_rope_store()
    assert k is not None, "the C backend is not in use: fc_rope_store cannot be tested"
    return k


def make_qkv(num_tokens: int, num_heads: int, num_kv_heads: int, head_dim: int, seed: int):
    rng = np.random.default_rng(seed)
    qkv = rng.standard_normal((num_tokens, (num_heads + 2 * num_kv_heads) * head_dim)) * 40
    # fp16 edge cases in k and v: subnormals, ties, overflow, zeros of both signs
    edge = np.array([6e-8, -3e-6, 1e-5, 65519.0, 65520.0, -7e4, 0.0, -0.0, 2049.0, 1.00048828125])
    qkv[:, num_heads * head_dim:][:, :len(edge)] = edge[:qkv.shape[1] - num_heads * head_dim]
    return torch.from_numpy(qkv.astype(np.float32))


@pytest.mark.parametrize("interleaved", [False, True], ids=["neox", "interleaved"])
@pytest.mark.parametrize("head_dim", [64, 6], ids=["simd", "scalar-tail"])
def test_matches_torch_ops(kernel, interleaved: bool, head_dim: int):
    num_tokens, num_heads, num_kv_heads = 5, 4, 2
    qkv = make_qkv(num_tokens, num_heads, num_kv_heads, head_dim, seed=head_dim)
    rotary = RotaryEmbedding(head_dim, 64, 10000.0)
    positions = torch.tensor([3, 9, 10, 40, 63])
    cos, sin = rotary.cos_sin(positions)                       # [n, 1, head_dim / 2]
    rotate = RotaryEmbedding.apply_interleaved if interleaved else RotaryEmbedding.apply
    q, k, v = qkv.split([num_heads * head_dim, num_kv_heads * head_dim,
                         num_kv_heads * head_dim], dim=-1)
    want_q = rotate(q.reshape(num_tokens, num_heads, head_dim), cos, sin)
    want_k = rotate(k.reshape(num_tokens, num_kv_heads, head_dim), cos, sin).to(torch.float16)
    want_v = v.reshape(num_tokens, num_kv_heads, head_dim).to(torch.float16)

    # slot-major cache [slots, kv_heads, dim], tokens in scattered slots
    slots = torch.tensor([7, 0, 12, 3, 9])
    k_cache = torch.zeros(16, num_kv_heads, head_dim, dtype=torch.float16)
    v_cache = torch.zeros_like(k_cache)
    got_q = kernel(qkv, cos, sin, interleaved, num_kv_heads, head_dim, k_cache, v_cache, slots,
                   k_cache.stride(0), k_cache.stride(1))
    assert torch.equal(got_q, want_q)
    assert torch.equal(k_cache[slots].view(torch.int16), want_k.view(torch.int16))
    assert torch.equal(v_cache[slots].view(torch.int16), want_v.view(torch.int16))

    # head-major cache [kv_heads, max_tokens, dim] at the positions
    k_cache = torch.zeros(num_kv_heads, 64, head_dim, dtype=torch.float16)
    v_cache = torch.zeros_like(k_cache)
    kernel(qkv, cos, sin, interleaved, num_kv_heads, head_dim, k_cache, v_cache, positions,
           k_cache.stride(1), k_cache.stride(0))
    assert torch.equal(k_cache[:, positions].transpose(0, 1).view(torch.int16), want_k.view(torch.int16))
    assert torch.equal(v_cache[:, positions].transpose(0, 1).view(torch.int16), want_v.view(torch.int16))


def test_rejects_fp32_cache(kernel):
    qkv = make_qkv(1, 2, 1, 8, seed=1)
    cos = sin = torch.zeros(1, 1, 4)
    cache = torch.zeros(1, 4, 8)
    with pytest.raises(TypeError, match="float16"):
        kernel(qkv, cos, sin, False, 1, 8, cache, cache, torch.tensor([0]), 8, 32)
