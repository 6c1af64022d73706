"""GGML tensor types, block formats and reference (numpy) dequantization."""
from fastcoder.quant.dequant import DEQUANTIZERS, dequantize, supported_types
from fastcoder.quant.types import BLOCK_FORMATS, QK_K, BlockFormat, GGMLType, row_nbytes

__all__ = ["BLOCK_FORMATS", "DEQUANTIZERS", "QK_K", "BlockFormat", "GGMLType", "dequantize",
           "row_nbytes", "supported_types"]
