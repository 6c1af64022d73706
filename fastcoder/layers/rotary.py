"""Rotary position embedding: NEOX layout (rotate halves), as qwen2/gemma3 GGUFs store q/k, and
the interleaved layout (rotate adjacent pairs) of llama.cpp's `llama` arch, whose converter
permutes the q/k rows so that pairs (2i, 2i+1) hold what transformers rotates as (i, i + d/2)."""
from __future__ import annotations

import torch


class RotaryEmbedding(torch.nn.Module):
    def __init__(self, head_dim: int, max_positions: int, theta: float, scaling_factor: float = 1.0):
        super().__init__()
        inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim))
        positions = torch.arange(max_positions, dtype=torch.float64) / scaling_factor
        freqs = torch.outer(positions, inv_freq)                     # [max_positions, head_dim/2]
        self.register_buffer("cos", freqs.cos().float(), persistent=False)
        self.register_buffer("sin", freqs.sin().float(), persistent=False)

    def cos_sin(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Tables for `positions` [num_tokens], each [num_tokens, 1, head_dim/2]; computed once
        per forward and shared by every layer."""
        return self.cos[positions].unsqueeze(1), self.sin[positions].unsqueeze(1)

    @staticmethod
    def apply(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        """x: [num_tokens, num_heads, head_dim] -> rotated, same shape."""
        x1, x2 = x.chunk(2, dim=-1)
        return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)

    @staticmethod
    def apply_interleaved(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        """x: [num_tokens, num_heads, head_dim], pairs (2i, 2i+1) rotated by angle i."""
        pairs = x.unflatten(-1, (-1, 2))                      # [tokens, heads, head_dim/2, 2]
        x1, x2 = pairs[..., 0], pairs[..., 1]
        return torch.stack((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1).flatten(-2)

    def forward(self, x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        return self.apply(x, *self.cos_sin(positions))
