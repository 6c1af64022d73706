"""SwiGLU's silu(gate) * up in C (`fc_silu_mul`) over torch tensors: one call instead of three
torch ops. `c_silu_mul()` is the kernel when the C backend is the one in use, else None."""
from __future__ import annotations

import functools
from typing import Callable

import torch

from fastcoder.kernels.qmatmul import get_backend

SiluMulKernel = Callable[[torch.Tensor], torch.Tensor]


@functools.cache
def c_silu_mul() -> SiluMulKernel | None:
    if get_backend().name != "c":
        return None
    from fastcoder.kernels._qmatmul import ffi, lib
    return functools.partial(_run, ffi.cast, lib.fc_silu_mul)


def _run(cast, fn, gate_up: torch.Tensor) -> torch.Tensor:
    """gate_up: [num_tokens, 2 * ffn] fp32 (gate first) -> [num_tokens, ffn]."""
    gate_up = gate_up.contiguous()
    num_tokens, width = gate_up.shape
    out = torch.empty(num_tokens, width // 2)
    fn(cast("float *", gate_up.data_ptr()), num_tokens, width // 2, cast("float *", out.data_ptr()))
    return out
