"""GGUF key/value metadata as plain Python values (str, int, float, bool, lists)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from gguf import GGUFReader, GGUFValueType


def field_value(field) -> Any:
    """One GGUF field as a Python value; arrays of strings become list[str]."""
    if not field.types:
        return None
    if field.types[0] == GGUFValueType.ARRAY:
        item_type = field.types[-1]
        if item_type == GGUFValueType.STRING:
            return [bytes(field.parts[i]).decode("utf-8", errors="replace") for i in field.data]
        return [field.parts[i].tolist()[0] for i in field.data]
    if field.types[0] == GGUFValueType.STRING:
        return bytes(field.parts[field.data[0]]).decode("utf-8", errors="replace")
    return field.parts[field.data[0]].tolist()[0]


def reader_metadata(reader: GGUFReader) -> dict[str, Any]:
    return {name: field_value(field) for name, field in reader.fields.items()}


def read_metadata(path: str | Path) -> dict[str, Any]:
    """All metadata of a GGUF file (memory-mapped; tensors are not read)."""
    return reader_metadata(GGUFReader(str(path), "r"))
