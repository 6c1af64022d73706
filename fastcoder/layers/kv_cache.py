"""A preallocated contiguous KV cache for one sequence."""
from __future__ import annotations

import torch


class KVCache:
    """k, v: [num_layers, num_kv_heads, max_tokens, head_dim]; never reallocated. Heads outermost
    so each head's keys are one contiguous matrix for the attention matmuls."""

    def __init__(self, num_layers: int, max_tokens: int, num_kv_heads: int, head_dim: int):
        shape = (num_layers, num_kv_heads, max_tokens, head_dim)
        self.k = torch.zeros(shape, dtype=torch.float32)
        self.v = torch.zeros(shape, dtype=torch.float32)
        self.max_tokens = max_tokens

    def write(self, layer: int, positions: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
        """positions: [num_tokens] (contiguous); k, v: [num_tokens, num_kv_heads, head_dim]."""
        start, end = int(positions[0]), int(positions[-1]) + 1
        self.k[layer, :, start:end] = k.transpose(0, 1)
        self.v[layer, :, start:end] = v.transpose(0, 1)

    def read(self, layer: int, start: int, end: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values of positions start..end-1: [num_kv_heads, end - start, head_dim]."""
        return self.k[layer, :, start:end], self.v[layer, :, start:end]

    def attend(self, layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
               positions: torch.Tensor, scale: float, sliding_window: int = 0) -> torch.Tensor:
        from fastcoder.layers.attention import contiguous_attention
        return contiguous_attention(q, k, v, positions, self, layer, scale, sliding_window)
