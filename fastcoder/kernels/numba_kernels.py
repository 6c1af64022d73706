"""Portable Numba backend over the same packed layout as the C kernels (see pack.py).

Weights are dequantized one tile block (8 rows x one GGUF block) at a time, exactly as the
reference does, and multiplied with fp32 activations; each tile block is reused for every token.
Slower than the C path (no int8 dot products), but exact up to fp32 rounding and needs no
compiler.
"""
from __future__ import annotations

import functools
from typing import Callable

import numpy as np
from numba import njit, prange

from fastcoder.kernels.experts import matmul_experts_by_views
from fastcoder.kernels.pack import TILE_ROWS, QuantMatrix, tile_block_bytes
from fastcoder.kernels.qmatmul import check_args, default_num_threads
from fastcoder.quant import BLOCK_FORMATS, GGMLType

Q4_0, Q5_0, Q8_0 = int(GGMLType.Q4_0), int(GGMLType.Q5_0), int(GGMLType.Q8_0)
Q4_K, Q5_K, Q6_K = int(GGMLType.Q4_K), int(GGMLType.Q5_K), int(GGMLType.Q6_K)

# every f16 bit pattern -> float32 (exact), indexed by the little-endian uint16
F16_TABLE = np.arange(1 << 16, dtype=np.uint16).view(np.float16).astype(np.float32)
F16_TABLE.setflags(write=False)


@njit(inline="always")
def _f16(w, i, table):
    return table[np.int32(w[i]) | (np.int32(w[i + 1]) << 8)]


@njit(inline="always")
def _g4(w, chunk, r, i):
    """byte i of row r's 4-byte group in the 32-byte chunk at offset `chunk`"""
    return np.int32(w[chunk + 4 * r + i])


@njit(inline="always")
def _scale_min_k4(w, o, r, j):
    a, b, c = o + 32 + 4 * r, o + 64 + 4 * r, o + 96 + 4 * r
    if j < 4:
        return np.int32(w[a + j]) & 63, np.int32(w[b + j]) & 63
    sc = (np.int32(w[c + j - 4]) & 15) | ((np.int32(w[a + j - 4]) >> 6) << 4)
    mn = (np.int32(w[c + j - 4]) >> 4) | ((np.int32(w[b + j - 4]) >> 6) << 4)
    return sc, mn


@njit(cache=True, fastmath=True)
def dequant_tile_block(kind, w, o, table, out):
    """Packed tile block at w[o:] -> out[8, block_size] float32 (same values as the reference)."""
    for r in range(TILE_ROWS):
        d = _f16(w, o + 2 * r, table)
        if kind == Q8_0:
            for c in range(8):
                for i in range(4):
                    q = _g4(w, o + 16 + 32 * c, r, i)
                    out[r, 4 * c + i] = d * np.float32(q - 256 if q > 127 else q)
        elif kind == Q4_0 or kind == Q5_0:
            qs, off = (o + 16, 8) if kind == Q4_0 else (o + 48, 16)
            for c in range(4):
                for i in range(4):
                    q = _g4(w, qs + 32 * c, r, i)
                    lo, hi = q & 15, q >> 4
                    if kind == Q5_0:
                        h = _g4(w, o + 16, r, i)
                        lo |= ((h >> c) & 1) << 4
                        hi |= ((h >> (4 + c)) & 1) << 4
                    out[r, 4 * c + i] = d * np.float32(lo - off)
                    out[r, 16 + 4 * c + i] = d * np.float32(hi - off)
        elif kind == Q4_K or kind == Q5_K:
            dmin = _f16(w, o + 16 + 2 * r, table)
            qs = o + 128 if kind == Q4_K else o + 384
            for j in range(8):
                sc, mn = _scale_min_k4(w, o, r, j)
                d1, m1 = d * np.float32(sc), dmin * np.float32(mn)
                for c in range(8):
                    for i in range(4):
                        q = _g4(w, qs + 256 * (j // 2) + 32 * c, r, i)
                        v = q >> 4 if j & 1 else q & 15
                        if kind == Q5_K:
                            v |= ((_g4(w, o + 128 + 32 * c, r, i) >> j) & 1) << 4
                        out[r, 32 * j + 4 * c + i] = d1 * np.float32(v) - m1
        elif kind == Q6_K:
            for h in range(2):
                for k in range(4):
                    for c in range(8):
                        for i in range(4):
                            l = 4 * c + i
                            s = 8 * h + 2 * k + l // 16
                            ql = _g4(w, o + 144 + 512 * h + 256 * (k & 1) + 32 * c, r, i)
                            qh = _g4(w, o + 1168 + 256 * h + 32 * c, r, i)
                            lo = ql & 15 if k < 2 else ql >> 4
                            v = (lo | (((qh >> (2 * k)) & 3) << 4)) - 32
                            sc = np.int32(w[o + 16 + 16 * (s // 2) + 2 * r + (s & 1)])
                            sc = sc - 256 if sc > 127 else sc
                            out[r, 128 * h + 32 * k + l] = d * np.float32(sc) * np.float32(v)


@njit(parallel=True, fastmath=True, cache=True)
def matmul_blocks(kind, block_size, tbb, w, rows, x, y, table):
    """y[t, r] = sum_c W[r, c] x[t, c] for packed tiles w [num_tiles, nb * tbb]."""
    num_tiles, num_tokens = w.shape[0], x.shape[0]
    nb = x.shape[1] // block_size
    for tile in prange(num_tiles):
        wt = w[tile]
        wb = np.empty((TILE_ROWS, block_size), dtype=np.float32)
        acc = np.zeros((num_tokens, TILE_ROWS), dtype=np.float32)
        for b in range(nb):
            dequant_tile_block(kind, wt, b * tbb, table, wb)
            c0 = b * block_size
            for t in range(num_tokens):
                for r in range(TILE_ROWS):
                    s = np.float32(0.0)
                    for j in range(block_size):
                        s += wb[r, j] * x[t, c0 + j]
                    acc[t, r] += s
        for t in range(num_tokens):
            for r in range(min(TILE_ROWS, rows - TILE_ROWS * tile)):
                y[t, TILE_ROWS * tile + r] = acc[t, r]


@njit(parallel=True, fastmath=True, cache=True)
def matmul_f32(w, x, y):
    for r in prange(w.shape[0]):
        for t in range(x.shape[0]):
            s = np.float32(0.0)
            for c in range(w.shape[1]):
                s += w[r, c] * x[t, c]
            y[t, r] = s


@njit(parallel=True, fastmath=True, cache=True)
def matmul_f16(w_bits, x, y, table):
    for r in prange(w_bits.shape[0]):
        row = np.empty(w_bits.shape[1], dtype=np.float32)
        for c in range(w_bits.shape[1]):
            row[c] = table[w_bits[r, c]]
        for t in range(x.shape[0]):
            s = np.float32(0.0)
            for c in range(w_bits.shape[1]):
                s += row[c] * x[t, c]
            y[t, r] = s


class NumbaBackend:
    name = "numba"

    def __init__(self):
        self.num_threads = default_num_threads()

    def matmul(self, x: np.ndarray, w: QuantMatrix, out: np.ndarray | None = None,
               num_threads: int | None = None) -> np.ndarray:
        import numba
        out = check_args(x, w, out)
        numba.set_num_threads(min(num_threads or self.num_threads, numba.config.NUMBA_NUM_THREADS))
        if w.ggml_type == GGMLType.F32:
            matmul_f32(w.data, x, out)
        elif w.ggml_type == GGMLType.F16:
            matmul_f16(w.data.view(np.uint16), x, out, F16_TABLE)
        else:
            matmul_blocks(int(w.ggml_type), BLOCK_FORMATS[w.ggml_type].block_size,
                          tile_block_bytes(w.ggml_type), w.data, w.rows, x, out, F16_TABLE)
        return out

    def bind(self, x: np.ndarray, w: QuantMatrix, out: np.ndarray,
             num_threads: int | None = None) -> Callable[[], None]:
        return functools.partial(self.matmul, x, w, check_args(x, w, out), num_threads)

    def matmul_experts(self, x: np.ndarray, w: QuantMatrix, expert_rows: int,
                       expert_ids: np.ndarray, out: np.ndarray,
                       num_threads: int | None = None) -> np.ndarray:
        return matmul_experts_by_views(self, x, w, expert_rows, expert_ids, out, num_threads)
