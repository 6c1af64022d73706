"""Which implementation computes the model's linear layers: a registry, chosen at load."""
from __future__ import annotations

import functools
from typing import Callable

from fastcoder.errors import InvalidParameterError
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


def linear_factory(name: str, num_threads: int) -> LinearFactory:
    backend = LINEAR_BACKENDS.get(name)
    if backend is None:
        raise InvalidParameterError(f"kernels must be one of {', '.join(LINEAR_BACKENDS)}, "
                                    f"got {name!r}", param="kernels")
    return backend(num_threads)
