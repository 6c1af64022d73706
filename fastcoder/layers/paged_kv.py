"""Paged KV cache for a batch of sequences: fixed-size blocks addressed through block tables.

The model layer sees the same `attend` entry point as the single-sequence KVCache; the per-step
batch layout (which tokens belong to which sequence, their slots) travels in an explicit
`BatchLayout`, never in globals. Layers are split into KV groups, each with its own block pool
and block tables: one group for most models; gemma3 has its global layers in group 0 and its
sliding-window layers in group 1, whose pages out of the window go back to the pool."""
from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

from fastcoder.kernels.attention import c_paged_attention
from fastcoder.kernels.decoder_stack import StackKV
from fastcoder.kernels.rope import c_rope_store
from fastcoder.layers.attention import grouped_attention
from fastcoder.layers.kv_cache import KV_DTYPE


@dataclass(frozen=True)
class SequenceSlice:
    """One sequence's part of a flat batch of num_tokens tokens."""
    token_start: int           # first row of this sequence in the flat batch
    num_tokens: int            # tokens computed this step
    context_len: int           # tokens in the cache after this step (computed + new)
    # Per KV group: [context_len] flat cache slots of positions 0..context_len-1 (slots of
    # released pages point into the null block and are never read).
    key_slots: tuple[torch.Tensor, ...]


@dataclass(frozen=True)
class BatchLayout:
    sequences: tuple[SequenceSlice, ...]
    slot_mappings: tuple[torch.Tensor, ...]   # per KV group: [num_tokens] slot of each new K/V

    # What the one-call attention kernel reads; computed once per step, shared by the layers.
    @functools.cached_property
    def token_seq(self) -> torch.Tensor:
        """[num_tokens] index of each token's sequence."""
        return torch.repeat_interleave(torch.arange(len(self.sequences)),
                                       torch.tensor([s.num_tokens for s in self.sequences]))

    @functools.cached_property
    def flat_key_slots(self) -> tuple[tuple[torch.Tensor, torch.Tensor], ...]:
        """Per KV group: (seq_slot_start [num_seqs + 1], slots): every sequence's key slots end
        to end, sequence s's from seq_slot_start[s]."""
        flat = []
        for group in range(len(self.slot_mappings)):
            parts = [s.key_slots[group] for s in self.sequences]
            starts = torch.tensor([0] + [len(p) for p in parts]).cumsum(0)
            flat.append((starts, torch.cat(parts)))
        return tuple(flat)


class PagedKVCache:
    """Group g: k, v: [len(group_layers[g]), group_num_blocks[g] * block_size, kv_heads,
    head_dim] (flat slots); slot s belongs to block s // block_size. Block 0 of every group is the
    scheduler's null block."""

    def __init__(self, group_layers: tuple[tuple[int, ...], ...],
                 group_num_blocks: tuple[int, ...], block_size: int, num_kv_heads: int,
                 head_dim: int):
        if len(group_layers) != len(group_num_blocks):
            raise ValueError("one block count per KV group")
        self.k, self.v = [], []
        self.layer_to_group: dict[int, tuple[int, int]] = {}    # layer -> (group, index)
        for g, (layers, num_blocks) in enumerate(zip(group_layers, group_num_blocks)):
            shape = (len(layers), num_blocks * block_size, num_kv_heads, head_dim)
            self.k.append(torch.zeros(shape, dtype=KV_DTYPE))
            self.v.append(torch.zeros(shape, dtype=KV_DTYPE))
            self.layer_to_group.update({layer: (g, i) for i, layer in enumerate(layers)})
        # every layer in group 0 at its own index: the layout the decoder stack addresses
        self.one_group = (len(group_layers) == 1
                          and tuple(group_layers[0]) == tuple(range(len(group_layers[0]))))
        self.block_size = block_size
        self.group_num_blocks = tuple(group_num_blocks)
        self.layout: BatchLayout | None = None

    @staticmethod
    def bytes_per_block(num_layers: int, block_size: int, num_kv_heads: int, head_dim: int) -> int:
        return 2 * num_layers * block_size * num_kv_heads * head_dim * KV_DTYPE.itemsize

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.k + self.v)

    def slots(self, block_table: list[int] | tuple[int, ...], start: int, end: int
              ) -> torch.Tensor:
        """Flat slots of positions start..end-1 of a sequence: [end - start]."""
        positions = torch.arange(start, end)
        blocks = torch.tensor(block_table, dtype=torch.long)[positions // self.block_size]
        return blocks * self.block_size + positions % self.block_size

    def stack_kv(self, positions: torch.Tensor) -> StackKV | None:
        """This step's cache addressing for the one-call decoder stack, whose layer i is cache
        layer i: None unless every layer is in the one KV group, in order."""
        if not self.one_group:
            return None
        layout, k = self.layout, self.k[0]               # [layers, slots, kv_heads, dim]
        starts, slots = layout.flat_key_slots[0]
        return StackKV(k, self.v[0], layer_stride=k.stride(0),
                       store_slots=layout.slot_mappings[0], slot_stride=k.stride(1),
                       head_stride=k.stride(2), query_positions=positions,
                       kv_head_stride=k.stride(2), token_seq=layout.token_seq,
                       seq_slot_start=starts, slots=slots)

    def store_qkv(self, layer: int, qkv: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor],
                  interleaved: bool, positions: torch.Tensor) -> torch.Tensor | None:
        """The fused path (see KVCache.store_qkv): rotates q and k of the flat batch's projection
        rows and stores k and v in their slots in one C call; returns the rotated q, or None
        without C kernels."""
        kernel = c_rope_store()
        if kernel is None:
            return None
        group, index = self.layer_to_group[layer]
        cache_k, cache_v = self.k[group][index], self.v[group][index]   # [slots, kv_heads, dim]
        return kernel(qkv, *rope, interleaved, cache_k.shape[1], cache_k.shape[2], cache_k,
                      cache_v, self.layout.slot_mappings[group], cache_k.stride(0),
                      cache_k.stride(1))

    def attend(self, layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
               positions: torch.Tensor, scale: float, sliding_window: int = 0) -> torch.Tensor:
        """q: [num_tokens, num_heads, head_dim]; k, v: [num_tokens, kv_heads, head_dim] of the
        flat batch. Returns [num_tokens, num_heads * head_dim]."""
        group, index = self.layer_to_group[layer]
        slots = self.layout.slot_mappings[group]
        self.k[group][index].index_copy_(0, slots, k.to(KV_DTYPE))
        self.v[group][index].index_copy_(0, slots, v.to(KV_DTYPE))
        return self.attend_stored(layer, q, positions, scale, sliding_window)

    def attend_stored(self, layer: int, q: torch.Tensor, positions: torch.Tensor, scale: float,
                      sliding_window: int = 0) -> torch.Tensor:
        """Attention over the cache once this step's K/V of the layer are in their slots."""
        layout = self.layout
        group, index = self.layer_to_group[layer]
        cache_k, cache_v = self.k[group][index], self.v[group][index]   # [slots, kv_heads, dim]
        num_tokens, num_heads, head_dim = q.shape
        kernel = c_paged_attention()
        if kernel is not None:          # all sequences in one call, no gathered copies
            starts, slots = layout.flat_key_slots[group]
            return kernel(q.contiguous(), cache_k, cache_v, layout.token_seq, starts, slots,
                          positions, sliding_window, scale)
        out = torch.empty(num_tokens, num_heads * head_dim)
        for seq in layout.sequences:
            rows = slice(seq.token_start, seq.token_start + seq.num_tokens)
            first_key = 0
            if sliding_window:
                first_key = max(0, seq.context_len - seq.num_tokens - sliding_window + 1)
            slots = seq.key_slots[group][first_key:]
            keys = cache_k.index_select(0, slots).transpose(0, 1)     # [kv_heads, ctx, dim]
            values = cache_v.index_select(0, slots).transpose(0, 1)
            out[rows] = grouped_attention(q[rows], keys, values, positions[rows], first_key,
                                          scale, sliding_window)
        return out
