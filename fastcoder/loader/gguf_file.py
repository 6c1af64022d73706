"""Open a GGUF file: config from metadata, tensors kept in their quant blocks (memory-mapped)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fastcoder.config import ModelConfig
from fastcoder.errors import ModelFileError
from fastcoder.loader.config_reader import config_from_metadata
from fastcoder.loader.gguf_parse import GGUFFormatError, ParsedGGUF, TensorInfo, parse_gguf
from fastcoder.quant.dequant import dequantize
from fastcoder.quant.types import GGMLType, row_nbytes, to_ggml_type


@dataclass(frozen=True)
class QuantTensor:
    """One weight as stored in the file. shape is numpy order: [rows, cols] (GGUF ne reversed)."""
    name: str
    ggml_type: GGMLType
    shape: tuple[int, ...]
    data: np.ndarray  # raw blocks: uint8 [rows, row_bytes] for quantized types, else floats

    def dequantize(self) -> np.ndarray:
        """float32 array of `shape`."""
        return dequantize(self.data, self.ggml_type, self.shape)

    @property
    def nbytes(self) -> int:
        return int(self.data.nbytes)


@dataclass(frozen=True)
class GGUFModelFile:
    path: Path
    config: ModelConfig
    metadata: dict[str, Any]
    tensors: dict[str, QuantTensor]


_FLOAT_DTYPES = {GGMLType.F32: np.float32, GGMLType.F16: np.float16}


def _tensor_view(parsed: ParsedGGUF, info: TensorInfo, path: Path) -> QuantTensor:
    ggml_type = to_ggml_type(info.ggml_type)
    shape = tuple(int(d) for d in reversed(info.ne))                 # numpy order
    num_rows = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
    nbytes = num_rows * row_nbytes(ggml_type, info.ne[0])
    start = parsed.data_offset + info.offset
    if start + nbytes > len(parsed.buffer):
        raise ModelFileError(f"{path}: truncated: tensor {info.name} needs bytes up to "
                             f"{start + nbytes:,} but the file has {len(parsed.buffer):,}")
    raw = parsed.buffer[start:start + nbytes]
    if ggml_type in _FLOAT_DTYPES:
        data = raw.view(_FLOAT_DTYPES[ggml_type]).reshape(shape)
    else:
        data = raw.reshape(num_rows, nbytes // num_rows)               # [rows, row_bytes]
    return QuantTensor(name=info.name, ggml_type=ggml_type, shape=shape, data=data)


def open_gguf(path: str | Path) -> GGUFModelFile:
    """Raises ModelFileError naming the file and what is wrong with it."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: model file not found")
    try:
        parsed = parse_gguf(path)
    except GGUFFormatError as exc:
        raise ModelFileError(f"{path}: {exc}") from exc
    tensors = {info.name: _tensor_view(parsed, info, path) for info in parsed.tensor_infos}
    return GGUFModelFile(path=path, config=config_from_metadata(parsed.metadata, str(path)),
                         metadata=parsed.metadata, tensors=tensors)
