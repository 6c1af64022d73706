"""Rotary embedding + KV store in C (`fc_rope_store`) over torch tensors: one call per layer
between the q/k/v projection and attention, bit-identical to the torch ops it replaces.

`c_rope_store()` is the kernel when the C backend is the one in use, else None (callers then
rotate and write with torch)."""
from __future__ import annotations

import functools
from typing import Callable

import torch

from fastcoder.kernels.qmatmul import get_backend

MAX_HEAD_DIM = 512                     # the kernel's stack buffer for one rotated key
RopeStoreKernel = Callable[..., torch.Tensor]


@functools.cache
def c_rope_store() -> RopeStoreKernel | None:
    if get_backend().name != "c":
        return None
    from fastcoder.kernels._qmatmul import ffi, lib
    return functools.partial(_run, ffi.cast, lib.fc_rope_store)


def _run(cast, fn, qkv: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, interleaved: bool,
         num_kv_heads: int, head_dim: int, k_cache: torch.Tensor, v_cache: torch.Tensor,
         slots: torch.Tensor, slot_stride: int, head_stride: int) -> torch.Tensor:
    """qkv: [num_tokens, (num_heads + 2 * num_kv_heads) * head_dim] fp32 with contiguous rows;
    cos, sin: [num_tokens, 1, head_dim / 2] contiguous fp32; k_cache, v_cache: float16 bases that
    slots (int64 [num_tokens]), slot_stride and head_stride (elements) address. Returns the
    rotated q [num_tokens, num_heads, head_dim]."""
    if k_cache.dtype != torch.float16 or v_cache.dtype != torch.float16:
        raise TypeError(f"KV cache must be float16, got {k_cache.dtype}/{v_cache.dtype}")
    if head_dim > MAX_HEAD_DIM or qkv.stride(1) != 1 or not (cos.is_contiguous() and sin.is_contiguous()):
        raise ValueError("rope_store: unsupported layout")
    num_tokens = qkv.shape[0]
    num_heads = qkv.shape[1] // head_dim - 2 * num_kv_heads
    q = torch.empty(num_tokens, num_heads, head_dim)
    fn(cast("float *", qkv.data_ptr()), num_tokens, qkv.stride(0), num_heads, num_kv_heads,
       head_dim, cast("float *", cos.data_ptr()), cast("float *", sin.data_ptr()),
       int(interleaved), cast("float *", q.data_ptr()), cast("uint16_t *", k_cache.data_ptr()),
       cast("uint16_t *", v_cache.data_ptr()), cast("int64_t *", slots.data_ptr()), slot_stride,
       head_stride)
    return q
