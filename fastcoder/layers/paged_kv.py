"""Paged KV cache for a batch of sequences: fixed-size blocks addressed through block tables.

The model layer sees the same `write` / attention entry point as the single-sequence KVCache;
the per-step batch layout (which tokens belong to which sequence, their block tables) travels in
an explicit `BatchLayout`, never in globals."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from fastcoder.layers.attention import grouped_attention


@dataclass(frozen=True)
class SequenceSlice:
    """One sequence's part of a flat batch of num_tokens tokens."""
    token_start: int           # first row of this sequence in the flat batch
    num_tokens: int            # tokens computed this step
    context_len: int           # tokens in the cache after this step (computed + new)
    key_slots: torch.Tensor    # [context_len] flat cache slots of positions 0..context_len-1


@dataclass(frozen=True)
class BatchLayout:
    sequences: tuple[SequenceSlice, ...]
    slot_mapping: torch.Tensor  # [num_tokens] flat cache slot each new token's K/V goes to


class PagedKVCache:
    """k, v: [num_layers, num_blocks * block_size, num_kv_heads, head_dim] (flat slots); slot
    s belongs to block s // block_size. Block 0 is the scheduler's null block."""

    def __init__(self, num_layers: int, num_blocks: int, block_size: int, num_kv_heads: int,
                 head_dim: int):
        shape = (num_layers, num_blocks * block_size, num_kv_heads, head_dim)
        self.k = torch.zeros(shape, dtype=torch.float32)
        self.v = torch.zeros(shape, dtype=torch.float32)
        self.block_size = block_size
        self.num_blocks = num_blocks
        self.layout: BatchLayout | None = None

    @staticmethod
    def bytes_per_block(num_layers: int, block_size: int, num_kv_heads: int, head_dim: int) -> int:
        return 2 * num_layers * block_size * num_kv_heads * head_dim * 4

    def slots(self, block_table: list[int], start: int, end: int) -> torch.Tensor:
        """Flat slots of positions start..end-1 of a sequence: [end - start]."""
        positions = torch.arange(start, end)
        blocks = torch.tensor(block_table, dtype=torch.long)[positions // self.block_size]
        return blocks * self.block_size + positions % self.block_size

    def attend(self, layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
               positions: torch.Tensor, scale: float, sliding_window: int = 0) -> torch.Tensor:
        """q: [num_tokens, num_heads, head_dim]; k, v: [num_tokens, kv_heads, head_dim] of the
        flat batch. Returns [num_tokens, num_heads * head_dim]."""
        layout = self.layout
        num_tokens, num_heads, head_dim = q.shape
        self.k[layer].index_copy_(0, layout.slot_mapping, k)
        self.v[layer].index_copy_(0, layout.slot_mapping, v)
        out = torch.empty(num_tokens, num_heads * head_dim)
        for seq in layout.sequences:
            rows = slice(seq.token_start, seq.token_start + seq.num_tokens)
            first_key = 0
            if sliding_window:
                first_key = max(0, seq.context_len - seq.num_tokens - sliding_window + 1)
            slots = seq.key_slots[first_key:]
            keys = self.k[layer].index_select(0, slots).transpose(0, 1)  # [kv_heads, ctx, dim]
            values = self.v[layer].index_select(0, slots).transpose(0, 1)
            out[rows] = grouped_attention(q[rows], keys, values, positions[rows], first_key,
                                          scale, sliding_window)
        return out
