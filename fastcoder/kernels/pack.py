"""Packing GGUF weights once at load into the kernels' layout (8-row tiles), and back.

A tile holds 8 consecutive rows; its blocks are stored column block by column block, each tile
block being the 8 rows' GGUF blocks with their fields regrouped so one 32-byte load gives the
same field of all 8 rows. Every layout is a pure permutation of the GGUF bytes (Q5_0's high-bit
word is permuted bit by bit), so `unpack_weight(pack_weight(raw))` returns the raw bytes and
dequantizing the packed form is bit-exact. `G4(f)` below: field f's bytes regrouped as
[f // 4 chunk][8 rows][4 bytes]; d fields are [8 rows][2 bytes]. Byte offsets per tile block:

  Q8_0 (272):  d 0 | G4(qs) 16
  Q4_0 (144):  d 0 | G4(qs) 16
  Q5_0 (176):  d 0 | H 16: byte 4r+i, bit c+4n = 5th bit of weight 16n+4c+i | G4(qs) 48
  Q4_K (1152): d 0 | dmin 16 | G4(scales[0:4]) 32 | G4(scales[4:8]) 64 | G4(scales[8:12]) 96
               | G4(qs) 128
  Q5_K (1408): as Q4_K up to 128 | G4(qh) 128 | G4(qs) 384
  Q6_K (1680): d 0 | scales as [8 pairs][8 rows][2] 16 | G4(ql) 144 | G4(qh) 1168

The C kernels (csrc/scalar.c, csrc/simd.h) and numba_kernels.py read these offsets.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from types import MappingProxyType
from typing import Callable, Mapping, Sequence

import numpy as np

from fastcoder.errors import ModelFileError, UnsupportedQuantTypeError
from fastcoder.quant import BLOCK_FORMATS, GGMLType
from fastcoder.quant.types import to_ggml_type

TILE_ROWS = 8
_TILES_PER_CHUNK = 2048  # bounds packing temporaries to a few MB


@dataclass(frozen=True, slots=True, eq=False)
class QuantMatrix:
    """A [rows, cols] weight in the kernels' layout.

    data: uint8 [num_tiles, tile_bytes] for block types (rows padded with zero rows to a
    multiple of 8); float32 / float16 [rows, cols] for F32 / F16.
    """

    ggml_type: GGMLType
    rows: int
    cols: int
    data: np.ndarray

    @property
    def nbytes(self) -> int:
        """Bytes the kernels read per call (padding rows included)."""
        return int(self.data.nbytes)


def _g4(field: np.ndarray) -> np.ndarray:
    """[..., 8 rows, n] -> [..., n // 4 chunks, 8 rows, 4 bytes] flattened to [..., 8 * n]."""
    *lead, rows, n = field.shape
    grouped = field.reshape(*lead, rows, n // 4, 4).swapaxes(-3, -2)
    return grouped.reshape(*lead, rows * n)


def _rows(field: np.ndarray) -> np.ndarray:
    """[..., 8 rows, n] -> [..., 8 * n] row-major."""
    return field.reshape(*field.shape[:-2], -1)


def _q5_0_high_bits(qh: np.ndarray) -> np.ndarray:
    """[..., 8, 4] GGUF qh words -> [..., 32] H: byte 4r+i bit c+4n = bit 16n+4c+i of qh[r]."""
    bits = np.unpackbits(qh, axis=-1, bitorder="little")  # [..., 8, 32]
    bits = bits.reshape(*qh.shape[:-1], 2, 4, 4)  # [..., r, n, c, i]
    bits = np.moveaxis(bits, -1, -3)  # [..., r, i, n, c]
    packed = np.packbits(bits.reshape(*qh.shape[:-1], 4, 8), axis=-1, bitorder="little")
    return packed.reshape(*qh.shape[:-2], 32)


def _q5_0_high_bits_inverse(h: np.ndarray) -> np.ndarray:
    bits = np.unpackbits(h.reshape(*h.shape[:-1], 8, 4, 1), axis=-1, bitorder="little")
    bits = bits.reshape(*h.shape[:-1], 8, 4, 2, 4)  # [..., r, i, n, c]
    bits = np.moveaxis(bits, -3, -1)  # [..., r, n, c, i]
    return np.packbits(bits.reshape(*h.shape[:-1], 8, 32), axis=-1, bitorder="little")


def _q6_k_scales(scales: np.ndarray) -> np.ndarray:
    """[..., 8 rows, 16] -> [..., 128] as [8 pairs p][8 rows][2]: sub-blocks 2p, 2p + 1."""
    pairs = scales.reshape(*scales.shape[:-1], 8, 2).swapaxes(-3, -2)  # [..., p, r, 2]
    return pairs.reshape(*scales.shape[:-2], 128)


# [..., 8 rows, type_size] GGUF blocks of one tile column -> [..., tile_block_bytes]
_PACKERS: Mapping[GGMLType, Callable[[np.ndarray], list[np.ndarray]]] = MappingProxyType({
    GGMLType.Q8_0: lambda b: [_rows(b[..., 0:2]), _g4(b[..., 2:34])],
    GGMLType.Q4_0: lambda b: [_rows(b[..., 0:2]), _g4(b[..., 2:18])],
    GGMLType.Q5_0: lambda b: [_rows(b[..., 0:2]), _q5_0_high_bits(b[..., 2:6]), _g4(b[..., 6:22])],
    GGMLType.Q4_K: lambda b: [_rows(b[..., 0:2]), _rows(b[..., 2:4]), _g4(b[..., 4:8]),
                              _g4(b[..., 8:12]), _g4(b[..., 12:16]), _g4(b[..., 16:144])],
    GGMLType.Q5_K: lambda b: [_rows(b[..., 0:2]), _rows(b[..., 2:4]), _g4(b[..., 4:8]),
                              _g4(b[..., 8:12]), _g4(b[..., 12:16]), _g4(b[..., 16:48]),
                              _g4(b[..., 48:176])],
    GGMLType.Q6_K: lambda b: [_rows(b[..., 208:210]), _q6_k_scales(b[..., 192:208]),
                              _g4(b[..., 0:128]), _g4(b[..., 128:192])],
})

FLOAT_DTYPES: Mapping[GGMLType, type] = MappingProxyType({
    GGMLType.F32: np.float32, GGMLType.F16: np.float16})


def packed_types() -> tuple[GGMLType, ...]:
    return (*FLOAT_DTYPES, *_PACKERS)


def tile_block_bytes(ggml_type: GGMLType) -> int:
    return TILE_ROWS * BLOCK_FORMATS[ggml_type].type_size


def _pack_blocks(ggml_type: GGMLType, blocks: np.ndarray) -> np.ndarray:
    """[num_tiles, 8, num_blocks, type_size] -> [num_tiles, num_blocks * tile_block_bytes]."""
    by_column = blocks.swapaxes(1, 2)  # [num_tiles, num_blocks, 8, type_size]
    packed = np.concatenate(_PACKERS[ggml_type](by_column), axis=-1)
    return packed.reshape(blocks.shape[0], -1)


def _shape2(shape: tuple[int, ...]) -> tuple[int, int]:
    if len(shape) == 1:
        return 1, int(shape[0])
    if len(shape) != 2:
        raise ModelFileError(f"a matmul weight must be 2-D [rows, cols], got shape {tuple(shape)}")
    return int(shape[0]), int(shape[1])


def pack_weight(raw: np.ndarray | Sequence[np.ndarray], ggml_type: GGMLType | int,
                shape: tuple[int, ...]) -> QuantMatrix:
    """GGUF tensor data -> QuantMatrix in the kernels' layout.

    raw: the tensor's bytes as GGUFReader gives them (uint8 [rows, row_bytes] for block types,
    float32 / float16 arrays for F32 / F16), or several such tensors stacked row-wise (a fused
    projection). shape: numpy shape (rows, cols) of the whole, GGUF `ne` reversed.
    """
    qtype = to_ggml_type(ggml_type)
    rows, cols = _shape2(shape)
    parts = list(raw) if isinstance(raw, (list, tuple)) else [raw]
    if qtype in FLOAT_DTYPES:
        dtype = FLOAT_DTYPES[qtype]
        parts = [np.asarray(p).view(dtype) if p.dtype == np.uint8 else p for p in parts]
        data = np.concatenate(parts) if len(parts) > 1 else parts[0]
        return QuantMatrix(qtype, rows, cols,
                           np.ascontiguousarray(data, dtype=dtype).reshape(rows, cols))
    if qtype not in _PACKERS:
        names = ", ".join(t.name for t in packed_types())
        raise UnsupportedQuantTypeError(f"no matmul kernel for {qtype.name} weights; supported: {names}")
    fmt = BLOCK_FORMATS[qtype]
    if cols % fmt.block_size:
        raise ModelFileError(f"{qtype.name} weight of shape {(rows, cols)}: {cols} columns is not a "
                             f"multiple of the block size {fmt.block_size}")
    row_bytes = cols // fmt.block_size * fmt.type_size
    flats = [np.ascontiguousarray(p).view(np.uint8).reshape(-1) for p in parts]
    if sum(f.size for f in flats) != rows * row_bytes:
        raise ModelFileError(f"{qtype.name} weight of shape {(rows, cols)} needs "
                             f"{rows * row_bytes} bytes, got {sum(f.size for f in flats)}")
    srcs = [f.reshape(-1, row_bytes) for f in flats]
    gather = _c_pack_tiles()
    # parts are packed in place when each but the last fills whole tiles
    if gather is None or any(s.shape[0] % TILE_ROWS for s in srcs[:-1]):
        srcs = [np.concatenate(srcs)] if len(srcs) > 1 else srcs
    num_tiles = -(-rows // TILE_ROWS)
    out = np.empty((num_tiles, row_bytes // fmt.type_size * tile_block_bytes(qtype)),
                   dtype=np.uint8)
    tile = 0
    for src in srcs:
        part_tiles = -(-src.shape[0] // TILE_ROWS)
        target = out[tile:tile + part_tiles]
        if gather is None:
            _pack_numpy(qtype, src, target)
        else:
            _pack_by_gather(gather, qtype, src, target)
        tile += part_tiles
    return QuantMatrix(qtype, rows, cols, out)


def _pack_numpy(qtype: GGMLType, src: np.ndarray, out: np.ndarray) -> None:
    """uint8 [rows, row_bytes] -> out [num_tiles, num_blocks * tile_block_bytes], in chunks."""
    rows, ts = src.shape[0], BLOCK_FORMATS[qtype].type_size
    num_blocks, num_tiles = src.shape[1] // ts, -(-rows // TILE_ROWS)
    for t0 in range(0, num_tiles, _TILES_PER_CHUNK):
        t1 = min(num_tiles, t0 + _TILES_PER_CHUNK)
        chunk = src[t0 * TILE_ROWS:t1 * TILE_ROWS]
        if chunk.shape[0] != (t1 - t0) * TILE_ROWS:  # zero rows pad the last tile: weights 0
            chunk = np.concatenate([chunk, np.zeros(((t1 - t0) * TILE_ROWS - chunk.shape[0],
                                                     chunk.shape[1]), dtype=np.uint8)])
        blocks = chunk.reshape(t1 - t0, TILE_ROWS, num_blocks, ts)
        out[t0:t1] = _pack_blocks(qtype, blocks)


def _c_pack_tiles():
    """The C gather (`fc_pack_tiles`) when the C backend is in use, else None."""
    from fastcoder.kernels.qmatmul import get_backend
    backend = get_backend()
    if backend.name != "c":
        return None
    from fastcoder.kernels._qmatmul import ffi, lib
    return functools.partial(_run_gather, ffi, lib.fc_pack_tiles, backend.num_threads)


def _run_gather(ffi, fn, num_threads: int, ggml_type: GGMLType, src: np.ndarray,
                unit_offset: np.ndarray, out: np.ndarray, type_size: int) -> None:
    fn(int(ggml_type), ffi.from_buffer("uint8_t[]", src), src.shape[0], src.shape[1], type_size,
       ffi.from_buffer("int64_t[]", unit_offset), out.shape[1] // (src.shape[1] // type_size),
       ffi.from_buffer("uint8_t[]", out, require_writable=True), num_threads)


@functools.cache
def _unit_sources(ggml_type: GGMLType) -> np.ndarray:
    """Raw position (r * type_size + byte) of each 2-byte unit of a tile block (-1: Q5_0's H,
    bit-permuted, which the C side builds). Every field starts at an even offset, so units never straddle fields."""
    perm = _inverse_permutation(ggml_type)
    first, second = perm[0::2], perm[1::2]
    if np.any((first >= 0) & ((first % 2 != 0) | (second != first + 1))):
        raise AssertionError(f"{ggml_type.name} tile layout is not made of 2-byte units")
    return first


def _pack_by_gather(gather, qtype: GGMLType, src: np.ndarray, out: np.ndarray) -> None:
    """As _pack_numpy, by the C gather."""
    row_bytes, ts = src.shape[1], BLOCK_FORMATS[qtype].type_size
    units = _unit_sources(qtype)
    r, byte = units // ts, units % ts
    unit_offset = np.where(units >= 0, r * row_bytes + byte, -1).astype(np.int64)
    gather(qtype, np.ascontiguousarray(src), unit_offset, out, ts)


def _inverse_permutation(ggml_type: GGMLType) -> np.ndarray:
    """packed tile block position -> raw position (r * type_size + byte); -1 for Q5_0's H."""
    ts = BLOCK_FORMATS[ggml_type].type_size
    b = np.arange(TILE_ROWS * ts, dtype=np.int64).reshape(TILE_ROWS, ts)
    if ggml_type == GGMLType.Q5_0:
        return np.concatenate([_rows(b[:, 0:2]), np.full(32, -1), _g4(b[:, 6:22])])
    return np.concatenate(_PACKERS[ggml_type](b), axis=-1)


def unpack_weight(w: QuantMatrix) -> np.ndarray:
    """QuantMatrix -> the GGUF data it was packed from (uint8 [rows, row_bytes], or floats)."""
    if w.ggml_type in FLOAT_DTYPES:
        return w.data.copy()
    fmt = BLOCK_FORMATS[w.ggml_type]
    ts, tbb = fmt.type_size, tile_block_bytes(w.ggml_type)
    num_blocks = w.cols // fmt.block_size
    packed = w.data.reshape(-1, tbb)  # [num_tiles * num_blocks, tbb]
    raw = np.empty_like(packed)
    perm = _inverse_permutation(w.ggml_type)
    moved = perm >= 0
    raw[:, perm[moved]] = packed[:, moved]
    if w.ggml_type == GGMLType.Q5_0:  # the bit-permuted H field is not a byte permutation
        raw.reshape(-1, TILE_ROWS, ts)[:, :, 2:6] = _q5_0_high_bits_inverse(packed[:, 16:48])
    tiles = raw.reshape(w.data.shape[0], num_blocks, TILE_ROWS, ts).swapaxes(1, 2)
    return np.ascontiguousarray(tiles).reshape(-1, num_blocks * ts)[:w.rows]
