"""A preallocated contiguous KV cache for one sequence."""
from __future__ import annotations

import torch


class KVCache:
    """k, v: [num_layers, max_tokens, num_kv_heads, head_dim]; never reallocated."""

    def __init__(self, num_layers: int, max_tokens: int, num_kv_heads: int, head_dim: int):
        shape = (num_layers, max_tokens, num_kv_heads, head_dim)
        self.k = torch.zeros(shape, dtype=torch.float32)
        self.v = torch.zeros(shape, dtype=torch.float32)
        self.max_tokens = max_tokens

    def write(self, layer: int, positions: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
        """positions: [num_tokens]; k, v: [num_tokens, num_kv_heads, head_dim]."""
        self.k[layer, positions] = k
        self.v[layer, positions] = v

    def read(self, layer: int, num_tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values of the first num_tokens positions: [num_tokens, kv_heads, head_dim]."""
        return self.k[layer, :num_tokens], self.v[layer, :num_tokens]

    def attend(self, layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
               positions: torch.Tensor, scale: float, sliding_window: int = 0) -> torch.Tensor:
        from fastcoder.layers.attention import contiguous_attention
        return contiguous_attention(q, k, v, positions, self, layer, scale, sliding_window)
