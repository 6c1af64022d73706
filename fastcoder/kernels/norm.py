"""RMSNorm in C (`fc_rms_norm`) over torch tensors: one call instead of torch's composite op.

`c_rms_norm()` is the kernel when the C backend is the one in use, else None (callers then use
torch.nn.functional.rms_norm)."""
from __future__ import annotations

import functools
from typing import Callable

import torch

from fastcoder.kernels.qmatmul import get_backend

NormKernel = Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]


@functools.cache
def c_rms_norm() -> NormKernel | None:
    if get_backend().name != "c":
        return None
    from fastcoder.kernels._qmatmul import ffi, lib
    return functools.partial(_run, ffi.cast, lib.fc_rms_norm)


def _run(cast, fn, x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """x: [..., cols] fp32; weight: [cols] fp32 contiguous. Returns x's shape."""
    x = x.contiguous()
    cols = x.shape[-1]
    out = torch.empty_like(x)
    fn(cast("float *", x.data_ptr()), cast("float *", weight.data_ptr()), x.numel() // cols, cols,
       eps, cast("float *", out.data_ptr()), torch.get_num_threads())
    return out
