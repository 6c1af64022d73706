"""What `fastcoder list` (and the server's model list) shows: catalog models and local files."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum

from fastcoder.store.cache import is_pulled, local_gguf_files, model_path
from fastcoder.store.catalog import CATALOG, CatalogEntry


class ModelSource(StrEnum):
    CATALOG = "catalog"
    LOCAL = "local"


@dataclass(frozen=True)
class ModelInfo:
    name: str
    source: ModelSource
    description: str
    size_bytes: int | None    # catalog size, else the file's size; None if unknown
    pulled: bool
    path: str                 # where the file is (or will be, once pulled)

    def to_json(self) -> dict:
        return {**asdict(self), "source": self.source.value}


def list_models(catalog: Mapping[str, CatalogEntry] = CATALOG) -> list[ModelInfo]:
    """Catalog models in catalog order, then other `.gguf` files in the cache, by name."""
    infos = []
    for entry in catalog.values():
        path = model_path(entry.name)
        pulled = is_pulled(entry)
        size = entry.size_bytes
        if size is None and pulled:
            size = path.stat().st_size
        infos.append(ModelInfo(name=entry.name, source=ModelSource.CATALOG,
                               description=entry.description, size_bytes=size,
                               pulled=pulled, path=str(path)))
    for path in local_gguf_files():
        if path.stem in catalog:
            continue
        infos.append(ModelInfo(name=path.stem, source=ModelSource.LOCAL,
                               description="local file", size_bytes=path.stat().st_size,
                               pulled=True, path=str(path)))
    return infos
