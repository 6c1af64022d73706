"""Quantized matmul kernels on GGUF blocks: pack once at load, then matmul per call.

    w = pack_weight(raw, ggml_type, (rows, cols))   # GGUF bytes -> 8-row tiles (exact)
    y = matmul(x, w)                                 # x [num_tokens, cols] -> [num_tokens, rows]
"""
from fastcoder.kernels.pack import QuantMatrix, pack_weight, packed_types, unpack_weight
from fastcoder.kernels.qmatmul import (BACKENDS, bind_matmul, default_num_threads, get_backend,
                                       matmul, matmul_experts, release_threads)

__all__ = ["BACKENDS", "QuantMatrix", "bind_matmul", "default_num_threads", "get_backend", "matmul",
           "matmul_experts", "pack_weight", "packed_types", "release_threads", "unpack_weight"]
