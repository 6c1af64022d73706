"""Causal grouped-query attention over a KV cache."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from fastcoder.layers.kv_cache import KVCache


def cached_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, positions: torch.Tensor,
                     cache, layer: int, scale: float, sliding_window: int = 0) -> torch.Tensor:
    """Stores the new K/V in `cache` and attends: the cache decides the layout (one contiguous
    sequence, or a paged batch). q: [num_tokens, num_heads, head_dim]; k, v: [num_tokens,
    num_kv_heads, head_dim]. Returns [num_tokens, num_heads * head_dim]."""
    return cache.attend(layer, q, k, v, positions, scale, sliding_window)


def contiguous_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                         positions: torch.Tensor, cache: KVCache, layer: int, scale: float,
                         sliding_window: int = 0) -> torch.Tensor:
    """One sequence whose new tokens sit at `positions` (contiguous, ascending)."""
    num_tokens, num_heads, head_dim = q.shape
    cache.write(layer, positions, k, v)
    total = int(positions[-1]) + 1
    start = max(0, total - sliding_window - num_tokens + 1) if sliding_window else 0
    keys, values = cache.read(layer, total)                      # [total, kv_heads, head_dim]
    keys, values = keys[start:], values[start:]
    mask = None
    if num_tokens > 1 or (sliding_window and total - start > sliding_window):
        key_pos = torch.arange(start, total)
        mask = key_pos[None, :] <= positions[:, None]            # [num_tokens, total - start]
        if sliding_window:
            mask &= key_pos[None, :] > positions[:, None] - sliding_window
    out = F.scaled_dot_product_attention(
        q.transpose(0, 1), keys.transpose(0, 1), values.transpose(0, 1),   # [heads, tokens, dim]
        attn_mask=mask, scale=scale, enable_gqa=True)
    return out.transpose(0, 1).reshape(num_tokens, num_heads * head_dim)
