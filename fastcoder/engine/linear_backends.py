"""Which implementation computes the model's linear layers, and the KV storage type that goes
with it: registries, chosen at load."""
from __future__ import annotations

import functools
from typing import Callable

import torch

from fastcoder.errors import InvalidParameterError
from fastcoder.layers.kv_cache import KV_DTYPE
from fastcoder.layers.linear import DequantizedLinear, LinearFactory


def _quant(num_threads: int) -> LinearFactory:
    from fastcoder.layers.quant_linear import QuantLinear   # loads the compiled kernels
    return functools.partial(QuantLinear, num_threads=num_threads)


def _reference(num_threads: int) -> LinearFactory:
    return DequantizedLinear


LINEAR_BACKENDS: dict[str, Callable[[int], LinearFactory]] = {
    "quant": _quant,            # packed GGUF blocks, C/Numba kernels (FASTCODER_KERNELS=c|numba)
    "reference": _reference,    # fp32 dequantized weights, torch matmul
}


# The reference path keeps K/V in fp32 (exact against transformers); the fast path stores fp16.
KV_DTYPES: dict[str, torch.dtype] = {"quant": KV_DTYPE, "reference": torch.float32}


def linear_factory(name: str, num_threads: int) -> LinearFactory:
    backend = LINEAR_BACKENDS.get(name)
    if backend is None:
        raise InvalidParameterError(f"kernels must be one of {', '.join(LINEAR_BACKENDS)}, "
                                    f"got {name!r}", param="kernels")
    return backend(num_threads)
