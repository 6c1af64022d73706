"""Open a GGUF file: config from metadata, tensors kept in their quant blocks (memory-mapped)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from gguf import GGUFReader

from fastcoder.config import ModelConfig
from fastcoder.errors import ModelFileError
from fastcoder.loader.config_reader import config_from_metadata
from fastcoder.loader.metadata import reader_metadata
from fastcoder.quant.dequant import dequantize
from fastcoder.quant.types import GGMLType

GGUF_MAGIC = b"GGUF"


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


def open_gguf(path: str | Path) -> GGUFModelFile:
    """Raises ModelFileError naming the file and what is wrong with it."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: model file not found")
    with open(path, "rb") as f:
        if f.read(4) != GGUF_MAGIC:
            raise ModelFileError(f"{path}: not a GGUF file (bad magic bytes)")
    try:
        reader = GGUFReader(str(path), "r")
    except Exception as exc:  # gguf raises ValueError/IndexError/struct errors on bad files
        raise ModelFileError(f"{path}: corrupt or truncated GGUF ({type(exc).__name__}: {exc})"
                             ) from exc
    metadata = reader_metadata(reader)
    tensors = {}
    for t in reader.tensors:
        expected = int(np.prod(t.shape))
        if t.data.size == 0 or t.n_elements != expected:
            raise ModelFileError(f"{path}: tensor {t.name} is truncated")
        tensors[t.name] = QuantTensor(
            name=t.name, ggml_type=GGMLType(int(t.tensor_type)),
            shape=tuple(int(d) for d in reversed(t.shape)), data=t.data)
    return GGUFModelFile(path=path, config=config_from_metadata(metadata, str(path)),
                         metadata=metadata, tensors=tensors)
