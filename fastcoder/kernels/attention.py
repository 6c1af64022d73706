"""Batch-invariant causal attention (C `fc_attention`) over torch tensors.

`c_attention()` is the kernel when the C backend is the one in use, else None: callers then
use torch's bmm, which is correct but not batch-invariant (a token's output can move by 1e-7
with the number of tokens computed beside it)."""
from __future__ import annotations

import functools
from typing import Callable

import torch

from fastcoder.kernels.qmatmul import get_backend

AttentionKernel = Callable[..., torch.Tensor]


@functools.cache
def c_attention() -> AttentionKernel | None:
    if get_backend().name != "c":
        return None
    from fastcoder.kernels._qmatmul import ffi, lib
    return functools.partial(_run, ffi.cast, lib.fc_attention)


@functools.cache
def c_paged_attention() -> AttentionKernel | None:
    if get_backend().name != "c":
        return None
    from fastcoder.kernels._qmatmul import ffi, lib
    return functools.partial(_run_paged, ffi.cast, lib.fc_attention_paged)


def _check_kv(keys: torch.Tensor, values: torch.Tensor) -> None:
    # the kernels read raw pointers: a wrong dtype would be read as garbage, not rejected
    if keys.dtype != torch.float16 or values.dtype != torch.float16:
        raise TypeError(f"attention kernel K/V must be float16, got {keys.dtype}/{values.dtype}")


def _run_paged(cast, fn, q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor,
               token_seq: torch.Tensor, seq_slot_start: torch.Tensor, slots: torch.Tensor,
               query_positions: torch.Tensor, window: int, scale: float) -> torch.Tensor:
    """q: [num_tokens, num_heads, head_dim] contiguous fp32; k_cache, v_cache: [num_slots,
    num_kv_heads, head_dim] contiguous float16; token_seq: [num_tokens] sequence of each token;
    slots[seq_slot_start[s] + j]: the slot of sequence s's key at position j (all int64).
    Returns [num_tokens, num_heads * head_dim]."""
    _check_kv(k_cache, v_cache)
    num_tokens, num_heads, head_dim = q.shape
    out = torch.empty(num_tokens, num_heads * head_dim)
    fn(cast("float *", q.data_ptr()), num_tokens, num_heads, head_dim,
       cast("uint16_t *", k_cache.data_ptr()), cast("uint16_t *", v_cache.data_ptr()),
       k_cache.shape[1],
       cast("int64_t *", token_seq.data_ptr()), cast("int64_t *", seq_slot_start.data_ptr()),
       cast("int64_t *", slots.data_ptr()), cast("int64_t *", query_positions.data_ptr()),
       window, scale, cast("float *", out.data_ptr()), torch.get_num_threads())
    return out


def _run(cast, fn, q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
         key_positions: torch.Tensor, query_positions: torch.Tensor, window: int,
         scale: float) -> torch.Tensor:
    """q: [num_tokens, num_heads, head_dim] contiguous fp32; keys, values: [num_kv_heads,
    num_keys, head_dim] float16 with the same strides and contiguous rows; key_positions:
    [num_keys] int64 (-1 = empty); query_positions: [num_tokens] int64. Returns [num_tokens, num_heads * head_dim]."""
    _check_kv(keys, values)
    num_tokens, num_heads, head_dim = q.shape
    num_kv_heads, num_keys, _ = keys.shape
    out = torch.empty(num_tokens, num_heads * head_dim)
    fn(cast("float *", q.data_ptr()), num_tokens, num_heads, head_dim,
       cast("uint16_t *", keys.data_ptr()), cast("uint16_t *", values.data_ptr()), num_kv_heads,
       num_keys, keys.stride(0), keys.stride(1), cast("int64_t *", key_positions.data_ptr()),
       cast("int64_t *", query_positions.data_ptr()), window, scale,
       cast("float *", out.data_ptr()), torch.get_num_threads())
    return out
