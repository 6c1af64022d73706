"""Reference dequantizers for the 256-weight K-quant super-blocks (Q2_K .. Q6_K).

Each takes `blocks` [num_blocks, type_size] uint8 and returns [num_blocks, 256] float32, with the
same float operation order as ggml's dequantize_row_*_K so results are bit-exact.
"""
from __future__ import annotations

import numpy as np

from fastcoder.quant.dequant_legacy import F32, f16_field, nibbles
from fastcoder.quant.types import QK_K

_SHIFT_2BIT = np.array([0, 2, 4, 6], dtype=np.uint8).reshape(1, 1, 4, 1)
_SHIFT_1BIT = np.arange(8, dtype=np.uint8).reshape(1, 8, 1)
_SHIFT_2BIT.setflags(write=False)
_SHIFT_1BIT.setflags(write=False)


def _crumbs(qs: np.ndarray) -> np.ndarray:
    """[n, 2, 32] bytes -> [n, 2, 4, 32] 2-bit fields: (h, j, l) = (qs[h, l] >> 2j) & 3."""
    return (qs[:, :, None, :] >> _SHIFT_2BIT) & np.uint8(3)


def _bit_planes(qh: np.ndarray) -> np.ndarray:
    """[n, 32] bytes -> [n, 8, 32] bits: (b, l) = bit b of qh[l]."""
    return (qh[:, None, :] >> _SHIFT_1BIT) & np.uint8(1)


def _scale_min_k4(scales: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """12 bytes of packed 6-bit (scale, min) pairs -> two [n, 8] uint8 (get_scale_min_k4).

    Sub-blocks 0-3: low 6 bits of bytes 0-3 (scale) and 4-7 (min). Sub-blocks 4-7: low/high
    nibble of bytes 8-11, with the top 2 bits taken from bits 6-7 of bytes 0-3 / 4-7.
    """
    s_lo, m_lo, hi = scales[:, 0:4], scales[:, 4:8], scales[:, 8:12]  # [n, 4] each
    sc = np.concatenate([s_lo & 63, (hi & 0x0F) | ((s_lo >> 6) << 4)], axis=1)  # [n, 8]
    mn = np.concatenate([m_lo & 63, (hi >> 4) | ((m_lo >> 6) << 4)], axis=1)  # [n, 8]
    return sc, mn


def dequant_q2_k(blocks: np.ndarray) -> np.ndarray:
    # block_q2_K (84 B): scales[16] (lo nibble scale, hi nibble min) | qs[64] | d f16 | dmin f16
    # 16 sub-blocks of 16; weight (h, j, l) of half h, shift j = crumb (qs[32h + l] >> 2j) & 3
    n = blocks.shape[0]
    scales = blocks[:, 0:16]  # [n, 16]
    d = f16_field(blocks, 80)  # [n, 1]
    dmin = f16_field(blocks, 82)  # [n, 1]
    dl = d * (scales & 0x0F).astype(F32)  # [n, 16]
    ml = dmin * (scales >> 4).astype(F32)  # [n, 16]
    q = _crumbs(blocks[:, 16:80].reshape(n, 2, 32)).reshape(n, 16, 16).astype(F32)
    return (dl[:, :, None] * q - ml[:, :, None]).reshape(n, QK_K)


def _q3_k_scales(scales: np.ndarray) -> np.ndarray:
    """12 bytes -> [n, 16] int8 signed 6-bit scales (value - 32).

    Scale i: low 4 bits = nibble (i // 8) of byte i % 8; high 2 bits = bits 2*(i // 4)
    of byte 8 + i % 4.
    """
    n = scales.shape[0]
    low = nibbles(scales[:, 0:8])  # [n, 16]
    high = (scales[:, None, 8:12] >> _SHIFT_2BIT[0]) & np.uint8(3)  # [n, 4, 4]
    return (low | (high.reshape(n, 16) << np.uint8(4))).view(np.int8) - np.int8(32)


def dequant_q3_k(blocks: np.ndarray) -> np.ndarray:
    # block_q3_K (110 B): hmask[32] | qs[64] | scales[12] (6-bit) | d f16
    # weight (h, j, l): crumb (qs[32h + l] >> 2j) & 3, minus 4 unless bit 4h + j of hmask[l]
    n = blocks.shape[0]
    d = f16_field(blocks, 108)  # [n, 1]
    dl = d * _q3_k_scales(blocks[:, 96:108]).astype(F32)  # [n, 16]
    low = _crumbs(blocks[:, 32:96].reshape(n, 2, 32)).view(np.int8)  # [n, 2, 4, 32]
    high = _bit_planes(blocks[:, 0:32]).reshape(n, 2, 4, 32)  # [n, 2, 4, 32]
    q = low - ((high ^ np.uint8(1)) << np.uint8(2)).view(np.int8)  # [n, 2, 4, 32]
    return (dl[:, :, None] * q.reshape(n, 16, 16).astype(F32)).reshape(n, QK_K)


def dequant_q4_k(blocks: np.ndarray) -> np.ndarray:
    # block_q4_K (144 B): d f16 | dmin f16 | scales[12] (6-bit scale/min x 8) | qs[128]
    # 8 sub-blocks of 32: 64-weight chunk c = low nibbles then high nibbles of qs[32c:32c+32]
    n = blocks.shape[0]
    d = f16_field(blocks, 0)  # [n, 1]
    dmin = f16_field(blocks, 2)  # [n, 1]
    sc, mn = _scale_min_k4(blocks[:, 4:16])  # [n, 8] each
    d1 = d * sc.astype(F32)  # [n, 8]
    m1 = dmin * mn.astype(F32)  # [n, 8]
    q = nibbles(blocks[:, 16:144].reshape(n, 4, 32)).reshape(n, 8, 32).astype(F32)
    return (d1[:, :, None] * q - m1[:, :, None]).reshape(n, QK_K)


def dequant_q5_k(blocks: np.ndarray) -> np.ndarray:
    # block_q5_K (176 B): d f16 | dmin f16 | scales[12] | qh[32] | qs[128]
    # as Q4_K, plus 5th bit of weight l in sub-block s = bit s of qh[l]
    n = blocks.shape[0]
    d = f16_field(blocks, 0)  # [n, 1]
    dmin = f16_field(blocks, 2)  # [n, 1]
    sc, mn = _scale_min_k4(blocks[:, 4:16])  # [n, 8] each
    d1 = d * sc.astype(F32)  # [n, 8]
    m1 = dmin * mn.astype(F32)  # [n, 8]
    low = nibbles(blocks[:, 48:176].reshape(n, 4, 32)).reshape(n, 8, 32)
    high = _bit_planes(blocks[:, 16:48])  # [n, 8, 32]
    q = (low | (high << np.uint8(4))).astype(F32)  # [n, 8, 32]
    return (d1[:, :, None] * q - m1[:, :, None]).reshape(n, QK_K)


def dequant_q6_k(blocks: np.ndarray) -> np.ndarray:
    # block_q6_K (210 B): ql[128] | qh[64] | scales int8[16] | d f16
    # weight (h, k, l), half h, quarter k: low 4 bits = nibble k // 2 of ql[64h + 32(k % 2) + l],
    # high 2 bits = (qh[32h + l] >> 2k) & 3; 16 sub-blocks of 16 with one int8 scale each
    n = blocks.shape[0]
    d = f16_field(blocks, 208)  # [n, 1]
    dsc = d * blocks[:, 192:208].view(np.int8).astype(F32)  # [n, 16]
    ql = blocks[:, 0:128].reshape(n, 2, 2, 32)  # [n, h, k % 2, l]
    low = np.concatenate([ql & np.uint8(0x0F), ql >> np.uint8(4)], axis=2)  # [n, 2, 4, 32]
    high = _crumbs(blocks[:, 128:192].reshape(n, 2, 32))  # [n, 2, 4, 32]
    q = (low | (high << np.uint8(4))).view(np.int8) - np.int8(32)  # [n, 2, 4, 32]
    return (dsc[:, :, None] * q.reshape(n, 16, 16).astype(F32)).reshape(n, QK_K)
