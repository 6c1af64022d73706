"""Preallocated KV cache for one sequence: a contiguous buffer for global attention layers and
a ring buffer for sliding-window (local) layers, so local layers' memory is bounded by the window
instead of growing with the context (gemma3: 15 of 18 layers)."""
from __future__ import annotations

import torch

from fastcoder.kernels.decoder_stack import StackKV
from fastcoder.kernels.rope import c_rope_store

# K/V storage type of every cache (as llama.cpp's default f16 cache): half the bytes of fp32, so
# half the memory per token and half the reads of a long-context decode step; the attention
# kernel widens them in registers (F16C). Queries and outputs stay fp32.
KV_DTYPE = torch.float16

# Ring slots beyond the window: a decode step may roll back this many tokens (speculative
# decoding rejecting drafts) and still find the window before the rollback point in the ring.
RING_SLACK = 32


class ContiguousKV:
    """k, v: [num_layers, num_kv_heads, max_tokens, head_dim]; never reallocated. Heads outermost
    so each head's keys are one contiguous matrix for the attention matmuls."""

    def __init__(self, num_layers: int, max_tokens: int, num_kv_heads: int, head_dim: int,
                 dtype: torch.dtype = KV_DTYPE):
        shape = (num_layers, num_kv_heads, max_tokens, head_dim)
        self.k = torch.zeros(shape, dtype=dtype)
        self.v = torch.zeros(shape, dtype=dtype)
        self.max_tokens = max_tokens

    def write(self, layer: int, positions: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
        """positions: [num_tokens] (contiguous); k, v: [num_tokens, num_kv_heads, head_dim]."""
        start, end = int(positions[0]), int(positions[-1]) + 1
        self.k[layer, :, start:end] = k.transpose(0, 1)
        self.v[layer, :, start:end] = v.transpose(0, 1)

    def read(self, layer: int, start: int, end: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values of positions start..end-1: [num_kv_heads, end - start, head_dim]."""
        return self.k[layer, :, start:end], self.v[layer, :, start:end]


class RingKV:
    """k, v: [num_layers, num_kv_heads, size, head_dim]; position p lives in slot p % size.
    `slot_positions` [size] records which position each slot holds (-1: none), the same for
    every layer because a forward writes the same positions into all of them."""

    def __init__(self, num_layers: int, size: int, num_kv_heads: int, head_dim: int,
                 dtype: torch.dtype = KV_DTYPE):
        shape = (num_layers, num_kv_heads, size, head_dim)
        self.k = torch.zeros(shape, dtype=dtype)
        self.v = torch.zeros(shape, dtype=dtype)
        self.size = size
        self.slot_positions = torch.full((size,), -1, dtype=torch.long)

    def holds(self, start: int, end: int) -> bool:
        """Are positions start..end-1 all still in the ring?"""
        if start >= end:
            return True
        positions = torch.arange(start, end)
        return bool((self.slot_positions[positions % self.size] == positions).all())

    def attend(self, layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
               positions: torch.Tensor, scale: float, window: int) -> torch.Tensor:
        from fastcoder.layers.attention import attend_keys, grouped_attention
        num_tokens = q.shape[0]
        start = int(positions[0])
        if num_tokens + window - 1 > self.size:
            # A chunk longer than the slack: attend over the old window gathered in order plus
            # the new keys, then keep only the chunk's last `size` tokens.
            first = max(0, start - window + 1)
            old = torch.arange(first, start) % self.size
            # new keys rounded to the cache type, as every other path reads them
            keys = torch.cat([self.k[layer].index_select(1, old),
                              k.transpose(0, 1).to(self.k.dtype)], dim=1)
            values = torch.cat([self.v[layer].index_select(1, old),
                                v.transpose(0, 1).to(self.k.dtype)], dim=1)
            out = grouped_attention(q, keys, values, positions, first, scale, window)
            kept = slice(max(0, num_tokens - self.size), num_tokens)
            self._write(layer, positions[kept], k[kept], v[kept])
            return out
        self._write(layer, positions, k, v)
        return attend_keys(q, self.k[layer], self.v[layer], self.slot_positions, positions,
                           scale, window)

    def _write(self, layer: int, positions: torch.Tensor, k: torch.Tensor,
               v: torch.Tensor) -> None:
        """positions: [n] ascending, n <= size; k, v: [n, num_kv_heads, head_dim]."""
        slots = positions % self.size
        self.k[layer].index_copy_(1, slots, k.transpose(0, 1).to(self.k.dtype))
        self.v[layer].index_copy_(1, slots, v.transpose(0, 1).to(self.k.dtype))
        if layer == 0:
            self.slot_positions[slots] = positions


class KVCache:
    """The KV cache of one sequence of up to `max_tokens` tokens. `layer_windows[i]` is layer i's
    sliding window in tokens (0 = global). Local layers share one window size; they get a ring of
    window + RING_SLACK slots unless that is no smaller than max_tokens. `dtype`: K/V storage
    (float32 for the reference path checked against transformers)."""

    def __init__(self, num_layers: int, max_tokens: int, num_kv_heads: int, head_dim: int,
                 layer_windows: tuple[int, ...] | None = None, ring_slack: int = RING_SLACK,
                 dtype: torch.dtype = KV_DTYPE):
        windows = tuple(layer_windows or (0,) * num_layers)
        if len(windows) != num_layers:
            raise ValueError(f"{len(windows)} layer windows for {num_layers} layers")
        local_windows = {w for w in windows if w}
        if len(local_windows) > 1:
            raise ValueError(f"local layers must share one window, got {sorted(local_windows)}")
        self.window = local_windows.pop() if local_windows else 0
        ring_size = self.window + ring_slack
        use_ring = bool(self.window) and ring_size < max_tokens
        self.layer_windows = windows
        self.max_tokens = max_tokens
        # layer -> (is_ring, index within its buffer)
        self.layer_slot: list[tuple[bool, int]] = []
        counts = [0, 0]
        for w in windows:
            is_ring = use_ring and w > 0
            self.layer_slot.append((is_ring, counts[is_ring]))
            counts[is_ring] += 1
        self.full = ContiguousKV(counts[0], max_tokens, num_kv_heads, head_dim, dtype)
        self.ring = (RingKV(counts[1], ring_size, num_kv_heads, head_dim, dtype) if counts[1]
                     else None)
        self._key_positions: torch.Tensor | None = None    # arange(max_tokens), on first use

    @property
    def nbytes(self) -> int:
        """Bytes of K/V storage allocated."""
        buffers = [self.full.k, self.full.v] + ([self.ring.k, self.ring.v] if self.ring else [])
        return sum(b.numel() * b.element_size() for b in buffers)

    def can_resume(self, num_tokens: int) -> bool:
        """Can a forward start at position `num_tokens` on the cached positions before it? The
        global layers keep everything; the ring must still hold the window before it."""
        if self.ring is None:
            return True
        return self.ring.holds(max(0, num_tokens - self.window + 1), num_tokens)

    def stack_kv(self, positions: torch.Tensor) -> StackKV | None:
        """This forward's cache addressing for the one-call decoder stack, whose layer i is
        cache layer i: None where a layer lives in a ring or the cache is fp32."""
        if self.ring is not None or self.full.k.dtype != KV_DTYPE:
            return None
        k = self.full.k                                  # [layers, kv_heads, max_tokens, dim]
        if self._key_positions is None:
            self._key_positions = torch.arange(self.max_tokens)
        num_keys = int(positions[-1]) + 1
        return StackKV(self.full.k, self.full.v, layer_stride=k.stride(0), store_slots=positions,
                       slot_stride=k.stride(2), head_stride=k.stride(1),
                       query_positions=positions, kv_head_stride=k.stride(1),
                       key_stride=k.stride(2), num_keys=num_keys,
                       key_positions=self._key_positions[:num_keys])

    def store_qkv(self, layer: int, qkv: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor],
                  interleaved: bool, positions: torch.Tensor) -> torch.Tensor | None:
        """The fused path: rotates q and k of the projection rows qkv [num_tokens, (heads +
        2 * kv_heads) * head_dim] and stores k and v at `positions` in one C call; returns the
        rotated q [num_tokens, heads, head_dim], or None where the layer takes the torch path
        (`attend`): no C kernels, an fp32 cache, or a ring layer."""
        kernel = c_rope_store()
        is_ring, index = self.layer_slot[layer]
        if kernel is None or is_ring or self.full.k.dtype != KV_DTYPE:
            return None
        k, v = self.full.k[index], self.full.v[index]          # [kv_heads, max_tokens, dim]
        return kernel(qkv, *rope, interleaved, k.shape[0], k.shape[2], k, v, positions,
                      k.stride(1), k.stride(0))

    def attend_stored(self, layer: int, q: torch.Tensor, positions: torch.Tensor, scale: float,
                      sliding_window: int = 0) -> torch.Tensor:
        """Attention of q over the cache after `store_qkv` wrote this layer's new K/V."""
        from fastcoder.layers.attention import contiguous_attend
        return contiguous_attend(q, positions, self.full, self.layer_slot[layer][1], scale,
                                 sliding_window)

    def attend(self, layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
               positions: torch.Tensor, scale: float, sliding_window: int = 0) -> torch.Tensor:
        from fastcoder.layers.attention import contiguous_attention
        is_ring, index = self.layer_slot[layer]
        if is_ring:
            if sliding_window != self.window:
                raise ValueError(f"layer {layer} attends with window {sliding_window}, its ring "
                                 f"was sized for {self.window}")
            return self.ring.attend(index, q, k, v, positions, scale, sliding_window)
        return contiguous_attention(q, k, v, positions, self.full, index, scale, sliding_window)
