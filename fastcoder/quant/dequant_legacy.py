"""Reference dequantizers for the 32-weight block formats (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0).

Each takes `blocks` [num_blocks, type_size] uint8 and returns [num_blocks, 32] float32, with the
same float operation order as ggml's dequantize_row_* so results are bit-exact.
"""
from __future__ import annotations

import numpy as np

F32 = np.float32


def f16_field(blocks: np.ndarray, offset: int) -> np.ndarray:
    """The little-endian f16 at byte `offset` of every block, as [num_blocks, 1] float32."""
    return blocks[:, offset:offset + 2].view(np.float16).astype(F32)


def nibbles(qs: np.ndarray) -> np.ndarray:
    """[..., k] bytes -> [..., 2k]: all low nibbles first, then all high nibbles (ggml order)."""
    return np.concatenate([qs & np.uint8(0x0F), qs >> np.uint8(4)], axis=-1)


def bits_le(qh: np.ndarray) -> np.ndarray:
    """[num_blocks, k] bytes -> [num_blocks, 8k] bits; bit i of the little-endian word at i."""
    return np.unpackbits(qh, axis=-1, bitorder="little")


def dequant_q4_0(blocks: np.ndarray) -> np.ndarray:
    # block_q4_0 (18 B): d f16 | qs[16]; weight j = d * (nibble_j - 8)
    d = f16_field(blocks, 0)  # [n, 1]
    q = nibbles(blocks[:, 2:18]).view(np.int8) - np.int8(8)  # [n, 32]
    return d * q.astype(F32)


def dequant_q4_1(blocks: np.ndarray) -> np.ndarray:
    # block_q4_1 (20 B): d f16 | m f16 | qs[16]; weight j = d * nibble_j + m
    d = f16_field(blocks, 0)  # [n, 1]
    m = f16_field(blocks, 2)  # [n, 1]
    q = nibbles(blocks[:, 4:20]).astype(F32)  # [n, 32]
    return d * q + m


def dequant_q5_0(blocks: np.ndarray) -> np.ndarray:
    # block_q5_0 (22 B): d f16 | qh u32 (bit j = 5th bit of weight j) | qs[16]
    d = f16_field(blocks, 0)  # [n, 1]
    high = bits_le(blocks[:, 2:6])  # [n, 32]
    q = (nibbles(blocks[:, 6:22]) | (high << np.uint8(4))).view(np.int8) - np.int8(16)  # [n, 32]
    return d * q.astype(F32)


def dequant_q5_1(blocks: np.ndarray) -> np.ndarray:
    # block_q5_1 (24 B): d f16 | m f16 | qh u32 | qs[16]; weight j = d * q_j + m
    d = f16_field(blocks, 0)  # [n, 1]
    m = f16_field(blocks, 2)  # [n, 1]
    high = bits_le(blocks[:, 4:8])  # [n, 32]
    q = (nibbles(blocks[:, 8:24]) | (high << np.uint8(4))).astype(F32)  # [n, 32]
    return d * q + m


def dequant_q8_0(blocks: np.ndarray) -> np.ndarray:
    # block_q8_0 (34 B): d f16 | qs int8[32]
    d = f16_field(blocks, 0)  # [n, 1]
    return d * blocks[:, 2:34].view(np.int8).astype(F32)  # [n, 32]
