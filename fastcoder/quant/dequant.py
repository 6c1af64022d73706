"""Reference numpy dequantization of GGUF tensors: the ground truth every kernel is tested against.

Block dequantizers are written from the layouts in llama.cpp's ggml-common.h / ggml-quants.c and
keep ggml's float operation order, so they are bit-exact with ggml and with gguf-py.
"""
from __future__ import annotations

import math
from types import MappingProxyType
from typing import Callable, Mapping

import numpy as np

from fastcoder.errors import ModelFileError, UnsupportedQuantTypeError
from fastcoder.quant import dequant_kquants as kq
from fastcoder.quant import dequant_legacy as lq
from fastcoder.quant.types import BLOCK_FORMATS, GGMLType, to_ggml_type

# [num_blocks, type_size] uint8 -> [num_blocks, block_size] float32
BlockDequantizer = Callable[[np.ndarray], np.ndarray]

# Blocks per numpy call: bounds the temporaries (a few times the output chunk) to some MB
# instead of several times a 500 MB embedding matrix.
_CHUNK_WEIGHTS = 1 << 20


def _dequant_f32(blocks: np.ndarray) -> np.ndarray:
    return blocks.view(np.float32)  # [n, 1]


def _dequant_f16(blocks: np.ndarray) -> np.ndarray:
    return blocks.view(np.float16).astype(np.float32)  # [n, 1]


def _dequant_bf16(blocks: np.ndarray) -> np.ndarray:
    # bf16 is the top half of an f32: widen the bits, no rounding involved
    return (blocks.view(np.uint16).astype(np.uint32) << np.uint32(16)).view(np.float32)  # [n, 1]


DEQUANTIZERS: Mapping[GGMLType, BlockDequantizer] = MappingProxyType({
    GGMLType.F32: _dequant_f32,
    GGMLType.F16: _dequant_f16,
    GGMLType.BF16: _dequant_bf16,
    GGMLType.Q4_0: lq.dequant_q4_0,
    GGMLType.Q4_1: lq.dequant_q4_1,
    GGMLType.Q5_0: lq.dequant_q5_0,
    GGMLType.Q5_1: lq.dequant_q5_1,
    GGMLType.Q8_0: lq.dequant_q8_0,
    GGMLType.Q2_K: kq.dequant_q2_k,
    GGMLType.Q3_K: kq.dequant_q3_k,
    GGMLType.Q4_K: kq.dequant_q4_k,
    GGMLType.Q5_K: kq.dequant_q5_k,
    GGMLType.Q6_K: kq.dequant_q6_k,
})


def supported_types() -> tuple[GGMLType, ...]:
    return tuple(DEQUANTIZERS)


def dequantize(data: np.ndarray, ggml_type: GGMLType | int, shape: tuple[int, ...]) -> np.ndarray:
    """Dequantize a raw GGUF tensor buffer to a new float32 array of `shape`.

    `data` is the buffer as GGUFReader gives it (`tensor.data`): uint8 [rows, row_bytes] for
    block types, float32/float16 for F32/F16, uint8 or uint16 for BF16; only its bytes matter.
    `shape` is the numpy shape (GGUF `ne` reversed), so the last axis is the row.
    """
    qtype = to_ggml_type(ggml_type)
    block_dequantizer = DEQUANTIZERS.get(qtype)
    if block_dequantizer is None:
        names = ", ".join(t.name for t in DEQUANTIZERS)
        raise UnsupportedQuantTypeError(
            f"GGML tensor type {qtype.name} ({int(qtype)}) cannot be dequantized; supported: {names}")
    fmt = BLOCK_FORMATS[qtype]
    shape = tuple(int(dim) for dim in shape)
    num_cols = shape[-1] if shape else 1
    if num_cols % fmt.block_size != 0:
        raise ModelFileError(
            f"{qtype.name} tensor of shape {shape}: row length {num_cols} is not a multiple "
            f"of the block size {fmt.block_size}")
    num_blocks = math.prod(shape) // fmt.block_size
    raw = np.ascontiguousarray(data).view(np.uint8).reshape(-1)  # [num_bytes]
    if raw.size != num_blocks * fmt.type_size:
        raise ModelFileError(
            f"{qtype.name} tensor of shape {shape} needs {num_blocks * fmt.type_size} bytes, "
            f"got {raw.size}")
    blocks = raw.reshape(num_blocks, fmt.type_size)  # [num_blocks, type_size]
    out = np.empty((num_blocks, fmt.block_size), dtype=np.float32)  # [num_blocks, block_size]
    chunk = max(1, _CHUNK_WEIGHTS // fmt.block_size)
    for start in range(0, num_blocks, chunk):
        out[start:start + chunk] = block_dequantizer(blocks[start:start + chunk])
    return out.reshape(shape)
