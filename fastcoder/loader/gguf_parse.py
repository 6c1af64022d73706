"""A fast GGUF header parser over a memory map.

gguf's GGUFReader builds a numpy view per array item, which costs ~6.5 s on a 150k-token
vocabulary; start-up must stay near a second, so the header is parsed here with plain struct
reads (~0.2 s) using the gguf package's type constants. Tensor data stays memory-mapped."""
from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from gguf import GGUFValueType

GGUF_MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32

_SCALAR_FORMATS = {
    GGUFValueType.UINT8: "<B", GGUFValueType.INT8: "<b", GGUFValueType.UINT16: "<H",
    GGUFValueType.INT16: "<h", GGUFValueType.UINT32: "<I", GGUFValueType.INT32: "<i",
    GGUFValueType.FLOAT32: "<f", GGUFValueType.BOOL: "<?", GGUFValueType.UINT64: "<Q",
    GGUFValueType.INT64: "<q", GGUFValueType.FLOAT64: "<d",
}
_NUMPY_DTYPES = {
    GGUFValueType.UINT8: np.uint8, GGUFValueType.INT8: np.int8, GGUFValueType.UINT16: np.uint16,
    GGUFValueType.INT16: np.int16, GGUFValueType.UINT32: np.uint32, GGUFValueType.INT32: np.int32,
    GGUFValueType.FLOAT32: np.float32, GGUFValueType.BOOL: np.bool_,
    GGUFValueType.UINT64: np.uint64, GGUFValueType.INT64: np.int64,
    GGUFValueType.FLOAT64: np.float64,
}


class GGUFFormatError(ValueError):
    """The bytes are not a well-formed GGUF file; the message says where."""


@dataclass(frozen=True, slots=True)
class TensorInfo:
    name: str
    ne: tuple[int, ...]        # GGUF order: fastest-varying dimension first
    ggml_type: int
    offset: int                # bytes from the start of the data section


@dataclass(frozen=True)
class ParsedGGUF:
    version: int
    metadata: dict[str, Any]
    tensor_infos: list[TensorInfo]
    data_offset: int           # absolute file offset of the data section
    buffer: np.memmap          # the whole file, read-only


class _Cursor:
    def __init__(self, buffer: memoryview):
        self.buffer = buffer
        self.pos = 0

    def unpack(self, fmt: str) -> Any:
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.buffer):
            raise GGUFFormatError(f"file ends inside the header (at byte {self.pos})")
        value = struct.unpack_from(fmt, self.buffer, self.pos)[0]
        self.pos += size
        return value

    def string(self) -> str:
        return self.strings(1)[0]

    def strings(self, count: int) -> list[str]:
        """`count` strings in one tight loop: a vocabulary and its merges are ~300k strings,
        whose one-by-one `string()` calls took ~1 s of a 1.5B model's start-up."""
        buffer, pos, end, out = self.buffer, self.pos, len(self.buffer), []
        from_bytes, append = int.from_bytes, out.append
        for _ in range(count):
            if pos + 8 > end:
                raise GGUFFormatError(f"file ends inside the header (at byte {pos})")
            length = from_bytes(buffer[pos:pos + 8], "little")
            pos += 8
            if pos + length > end:
                raise GGUFFormatError(f"string of {length} bytes runs past the end of the file")
            append(str(buffer[pos:pos + length], "utf-8", "replace"))
            pos += length
        self.pos = pos
        return out

    def value(self, value_type: int) -> Any:
        if value_type == GGUFValueType.STRING:
            return self.string()
        if value_type == GGUFValueType.ARRAY:
            item_type, count = self.unpack("<I"), self.unpack("<Q")
            if item_type in _NUMPY_DTYPES:     # numeric arrays in one read
                dtype = np.dtype(_NUMPY_DTYPES[GGUFValueType(item_type)]).newbyteorder("<")
                end = self.pos + count * dtype.itemsize
                if end > len(self.buffer):
                    raise GGUFFormatError("array runs past the end of the file")
                items = np.frombuffer(self.buffer[self.pos:end], dtype=dtype).tolist()
                self.pos = end
                return items
            if item_type == GGUFValueType.STRING:
                return self.strings(count)
            return [self.value(item_type) for _ in range(count)]
        try:
            return self.unpack(_SCALAR_FORMATS[GGUFValueType(value_type)])
        except (KeyError, ValueError):
            raise GGUFFormatError(f"unknown metadata value type {value_type} "
                                  f"at byte {self.pos}") from None


def parse_gguf(path: str | Path) -> ParsedGGUF:
    """Raises GGUFFormatError (bad magic, truncated header, tensors past the end of the file)."""
    buffer = np.memmap(path, dtype=np.uint8, mode="r")
    cursor = _Cursor(memoryview(buffer))
    if bytes(buffer[:4]) != GGUF_MAGIC:
        raise GGUFFormatError("not a GGUF file (bad magic bytes)")
    cursor.pos = 4
    version = cursor.unpack("<I")
    if version not in (2, 3):
        raise GGUFFormatError(f"unsupported GGUF version {version}")
    num_tensors, num_kv = cursor.unpack("<Q"), cursor.unpack("<Q")
    metadata: dict[str, Any] = {}
    for _ in range(num_kv):
        key = cursor.string()
        metadata[key] = cursor.value(cursor.unpack("<I"))
    infos = []
    for _ in range(num_tensors):
        name = cursor.string()
        num_dims = cursor.unpack("<I")
        ne = tuple(cursor.unpack("<Q") for _ in range(num_dims))
        infos.append(TensorInfo(name, ne, cursor.unpack("<I"), cursor.unpack("<Q")))
    alignment = int(metadata.get("general.alignment", DEFAULT_ALIGNMENT))
    data_offset = -(-cursor.pos // alignment) * alignment
    return ParsedGGUF(version, metadata, infos, data_offset, buffer)
