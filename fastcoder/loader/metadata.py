"""GGUF key/value metadata as plain Python values (str, int, float, bool, lists)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from fastcoder.errors import ModelFileError
from fastcoder.loader.gguf_parse import GGUFFormatError, parse_gguf


def read_metadata(path: str | Path) -> dict[str, Any]:
    """All metadata of a GGUF file (memory-mapped; tensors are not read)."""
    try:
        return parse_gguf(path).metadata
    except (GGUFFormatError, OSError) as exc:
        raise ModelFileError(f"{path}: {exc}") from exc
