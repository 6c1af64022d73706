"""GGML tensor types and their block formats (sizes from llama.cpp's ggml-common.h)."""
from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from types import MappingProxyType
from typing import Mapping

from fastcoder.errors import ModelFileError, UnsupportedQuantTypeError

QK_K = 256  # weights per K-quant super-block


class GGMLType(IntEnum):
    """`enum ggml_type` from ggml.h; values are what GGUF files store. Gaps are removed types."""

    F32 = 0
    F16 = 1
    Q4_0 = 2
    Q4_1 = 3
    Q5_0 = 6
    Q5_1 = 7
    Q8_0 = 8
    Q8_1 = 9
    Q2_K = 10
    Q3_K = 11
    Q4_K = 12
    Q5_K = 13
    Q6_K = 14
    Q8_K = 15
    IQ2_XXS = 16
    IQ2_XS = 17
    IQ3_XXS = 18
    IQ1_S = 19
    IQ4_NL = 20
    IQ3_S = 21
    IQ2_S = 22
    IQ4_XS = 23
    I8 = 24
    I16 = 25
    I32 = 26
    I64 = 27
    F64 = 28
    IQ1_M = 29
    BF16 = 30
    TQ1_0 = 34
    TQ2_0 = 35
    MXFP4 = 39


@dataclass(frozen=True, slots=True)
class BlockFormat:
    block_size: int  # weights per block
    type_size: int  # bytes per block


def _k(type_size: int) -> BlockFormat:
    return BlockFormat(QK_K, type_size)


BLOCK_FORMATS: Mapping[GGMLType, BlockFormat] = MappingProxyType({
    GGMLType.F32: BlockFormat(1, 4),
    GGMLType.F16: BlockFormat(1, 2),
    GGMLType.BF16: BlockFormat(1, 2),
    GGMLType.F64: BlockFormat(1, 8),
    GGMLType.I8: BlockFormat(1, 1),
    GGMLType.I16: BlockFormat(1, 2),
    GGMLType.I32: BlockFormat(1, 4),
    GGMLType.I64: BlockFormat(1, 8),
    GGMLType.Q4_0: BlockFormat(32, 2 + 16),
    GGMLType.Q4_1: BlockFormat(32, 2 + 2 + 16),
    GGMLType.Q5_0: BlockFormat(32, 2 + 4 + 16),
    GGMLType.Q5_1: BlockFormat(32, 2 + 2 + 4 + 16),
    GGMLType.Q8_0: BlockFormat(32, 2 + 32),
    # d and s are both f16 (ggml_half2 ds); gguf-py's table still says 4 + 4 + 32 (old f32 layout)
    GGMLType.Q8_1: BlockFormat(32, 2 + 2 + 32),
    GGMLType.Q2_K: _k(QK_K // 16 + QK_K // 4 + 2 + 2),
    GGMLType.Q3_K: _k(QK_K // 8 + QK_K // 4 + 12 + 2),
    GGMLType.Q4_K: _k(2 + 2 + 12 + QK_K // 2),
    GGMLType.Q5_K: _k(2 + 2 + 12 + QK_K // 8 + QK_K // 2),
    GGMLType.Q6_K: _k(QK_K // 2 + QK_K // 4 + QK_K // 16 + 2),
    GGMLType.Q8_K: _k(4 + QK_K + QK_K // 8),
    GGMLType.IQ2_XXS: _k(2 + QK_K // 4),
    GGMLType.IQ2_XS: _k(2 + QK_K // 4 + QK_K // 32),
    GGMLType.IQ3_XXS: _k(2 + QK_K // 4 + QK_K // 8),
    GGMLType.IQ1_S: _k(2 + QK_K // 8 + QK_K // 16),
    GGMLType.IQ4_NL: BlockFormat(32, 2 + 16),
    GGMLType.IQ3_S: _k(2 + QK_K // 4 + QK_K // 8 + QK_K // 32 + 4),
    GGMLType.IQ2_S: _k(2 + QK_K // 4 + QK_K // 16),
    GGMLType.IQ4_XS: _k(2 + 2 + QK_K // 2 + QK_K // 64),
    GGMLType.IQ1_M: _k(QK_K // 8 + QK_K // 16 + QK_K // 32),
    GGMLType.TQ1_0: _k(2 + 4 * 13),
    GGMLType.TQ2_0: _k(2 + 64),
    GGMLType.MXFP4: BlockFormat(32, 1 + 16),
})


def to_ggml_type(value: GGMLType | int) -> GGMLType:
    """Accepts a GGMLType, gguf's GGMLQuantizationType or a raw int from a GGUF header."""
    try:
        return GGMLType(int(value))
    except ValueError:
        raise UnsupportedQuantTypeError(f"unknown GGML tensor type {int(value)}") from None


def block_format(ggml_type: GGMLType | int) -> BlockFormat:
    qtype = to_ggml_type(ggml_type)
    fmt = BLOCK_FORMATS.get(qtype)
    if fmt is None:
        raise UnsupportedQuantTypeError(f"GGML tensor type {qtype.name} has no known block format")
    return fmt


def row_nbytes(ggml_type: GGMLType | int, num_cols: int) -> int:
    """Bytes taken by one row of `num_cols` weights stored as `ggml_type`."""
    fmt = block_format(ggml_type)
    if num_cols % fmt.block_size != 0:
        raise ModelFileError(
            f"row of {num_cols} weights is not a multiple of the {GGMLType(int(ggml_type)).name} "
            f"block size {fmt.block_size}")
    return num_cols // fmt.block_size * fmt.type_size
