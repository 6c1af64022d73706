"""Causal grouped-query attention over a KV cache.

Written as two batched matmuls per KV head group rather than torch's SDPA: SDPA's GQA path
expands K/V to every query head, which made a 512-token decode step 14x slower (650 us vs 45 us
per layer on this CPU). With the C kernels the work goes to `fc_attention` instead, which computes
each (token, head) row alone so that a token's output does not depend on how many tokens run
beside it (decode, speculative verification and prefill agree bit for bit)."""
from __future__ import annotations

import torch

from fastcoder.kernels.attention import c_attention
from fastcoder.layers.kv_cache import KV_DTYPE, ContiguousKV


def cached_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, positions: torch.Tensor,
                     cache, layer: int, scale: float, sliding_window: int = 0) -> torch.Tensor:
    """Stores the new K/V in `cache` and attends: the cache decides the layout (one contiguous
    sequence, or a paged batch). q: [num_tokens, num_heads, head_dim]; k, v: [num_tokens,
    num_kv_heads, head_dim]. Returns [num_tokens, num_heads * head_dim]."""
    return cache.attend(layer, q, k, v, positions, scale, sliding_window)


def grouped_attention(q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
                      query_positions: torch.Tensor, first_key_position: int, scale: float,
                      sliding_window: int = 0) -> torch.Tensor:
    """q: [num_tokens, num_heads, head_dim]; keys, values: [num_kv_heads, num_keys, head_dim]
    for positions first_key_position.. ; returns [num_tokens, num_heads * head_dim]."""
    key_positions = torch.arange(first_key_position, first_key_position + keys.shape[1])
    return attend_keys(q, keys, values, key_positions, query_positions, scale, sliding_window)


def attend_keys(q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
                key_positions: torch.Tensor, query_positions: torch.Tensor, scale: float,
                sliding_window: int = 0) -> torch.Tensor:
    """q: [num_tokens, num_heads, head_dim]; keys, values: [num_kv_heads, num_keys, head_dim] in
    any order, key j at position key_positions[j] (-1: an empty slot); a query attends to the keys
    at or before its position (and within the window). Returns [num_tokens, heads * head_dim]."""
    kernel = c_attention()
    if (kernel is not None and keys.dtype == values.dtype == KV_DTYPE
            and keys.stride() == values.stride() and keys.stride(2) == 1):
        return kernel(q.contiguous(), keys, values, key_positions.contiguous(),
                      query_positions.contiguous(), sliding_window, scale)
    key_pos, query_pos = key_positions[None, :], query_positions[:, None]
    allowed = (key_pos <= query_pos) & (key_pos >= 0)           # [tokens, keys]
    if sliding_window:
        allowed &= key_pos > query_pos - sliding_window
    return masked_attention(q, keys, values, allowed, scale)


def masked_attention(q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
                     allowed: torch.Tensor | None, scale: float) -> torch.Tensor:
    """q: [num_tokens, num_heads, head_dim]; keys, values: [num_kv_heads, num_keys, head_dim] in
    any order; allowed: [num_tokens, num_keys] bool (None = every key). Returns
    [num_tokens, num_heads * head_dim]."""
    num_tokens, num_heads, head_dim = q.shape
    num_kv_heads = keys.shape[0]
    group = num_heads // num_kv_heads
    keys, values = keys.to(q.dtype), values.to(q.dtype)          # a cache's f16 -> fp32
    # [kv_heads, group * num_tokens, head_dim]: rows ordered (head in group, token)
    qg = q.view(num_tokens, num_kv_heads, group, head_dim).permute(1, 2, 0, 3)
    qg = qg.reshape(num_kv_heads, group * num_tokens, head_dim)
    scores = torch.bmm(qg, keys.transpose(1, 2)).mul_(scale)    # [kv_heads, g * tokens, keys]
    if allowed is not None:
        scores.masked_fill_(~allowed.repeat(group, 1), float("-inf"))
    probs = torch.softmax(scores, dim=-1)
    out = torch.bmm(probs, values)                               # [kv_heads, g * tokens, dim]
    out = out.view(num_kv_heads, group, num_tokens, head_dim).permute(2, 0, 1, 3)
    return out.reshape(num_tokens, num_heads * head_dim)


def contiguous_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                         positions: torch.Tensor, cache: ContiguousKV, layer: int, scale: float,
                         sliding_window: int = 0) -> torch.Tensor:
    """One sequence whose new tokens sit at `positions` (contiguous, ascending)."""
    cache.write(layer, positions, k, v)
    return contiguous_attend(q, positions, cache, layer, scale, sliding_window)


def contiguous_attend(q: torch.Tensor, positions: torch.Tensor, cache: ContiguousKV, layer: int,
                      scale: float, sliding_window: int = 0) -> torch.Tensor:
    """Attention over the cached keys up to the last of `positions`, the new ones included."""
    num_tokens = q.shape[0]
    total = int(positions[-1]) + 1
    start = max(0, total - sliding_window - num_tokens + 1) if sliding_window else 0
    keys, values = cache.read(layer, start, total)               # [kv_heads, keys, head_dim]
    return grouped_attention(q, keys, values, positions, start, scale, sliding_window)
