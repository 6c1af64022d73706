"""Where pulled models live, and turning a user's model argument into a GGUF file path.

Layout: `$FASTCODER_HOME` (default `~/.cache/fastcoder`) / `models` / `<name>.gguf`.
Nothing here downloads: `resolve_model_path` only finds files (see `store.pull`).
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from fastcoder.errors import ModelFileError, UnknownModelError
from fastcoder.store.catalog import CATALOG, CatalogEntry

HOME_ENV = "FASTCODER_HOME"
GGUF_SUFFIX = ".gguf"
GGUF_MAGIC = b"GGUF"


class ModelNotPulledError(ModelFileError):
    """A catalog model whose file is not in the cache yet: `fastcoder pull NAME` fixes it."""
    http_status = 404
    error_type = "invalid_request_error"
    code = "model_not_pulled"

    def __init__(self, message: str, *, model: str, param: str | None = "model"):
        super().__init__(message, param=param)
        self.model = model


def fastcoder_home() -> Path:
    """The cache root: `$FASTCODER_HOME`, else `~/.cache/fastcoder`."""
    home = os.environ.get(HOME_ENV)
    return Path(home).expanduser() if home else Path.home() / ".cache" / "fastcoder"


def models_dir() -> Path:
    return fastcoder_home() / "models"


def model_path(name: str) -> Path:
    """Where the catalog model `name` is (or will be) stored; the file may not exist."""
    return models_dir() / f"{name}{GGUF_SUFFIX}"


def is_pulled(entry: CatalogEntry) -> bool:
    """True when the entry's file is in the cache with the catalog size (sha256 not checked)."""
    path = model_path(entry.name)
    if not path.is_file():
        return False
    return entry.size_bytes is None or path.stat().st_size == entry.size_bytes


def local_gguf_files() -> list[Path]:
    """`.gguf` files in the cache models dir, sorted by name (catalog models included)."""
    directory = models_dir()
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.suffix == GGUF_SUFFIX and p.is_file())


def _looks_like_path(text: str) -> bool:
    return (os.sep in text or "/" in text or text.startswith((".", "~"))
            or text.endswith(GGUF_SUFFIX))


def _check_gguf_file(path: Path, shown: str) -> Path:
    if not path.exists():
        raise ModelFileError(f"model file not found: {shown}", param="model")
    if not path.is_file():
        raise ModelFileError(f"model path is not a file: {shown}", param="model")
    with path.open("rb") as f:
        magic = f.read(len(GGUF_MAGIC))
    if magic != GGUF_MAGIC:
        raise ModelFileError(f"not a GGUF file (bad magic {magic!r}): {shown}", param="model")
    return path


def resolve_model_path(name_or_path: str | os.PathLike,
                       *, catalog: Mapping[str, CatalogEntry] = CATALOG) -> Path:
    """The GGUF file for a catalog name, a `.gguf` name in the cache, or a file path.

    Raises ModelNotPulledError (a ModelFileError) for a catalog model not pulled yet,
    ModelFileError for a path that is missing / not a file / not GGUF, and UnknownModelError
    (listing the catalog) for anything else.
    """
    text = os.fspath(name_or_path)
    entry = catalog.get(text)
    if entry is not None:
        path = model_path(entry.name)
        if not path.is_file():
            raise ModelNotPulledError(
                f"model {text!r} is not pulled yet: run `fastcoder pull {text}`", model=text)
        size = path.stat().st_size
        if entry.size_bytes is not None and size != entry.size_bytes:
            raise ModelFileError(
                f"model file {path} is {size} bytes, expected {entry.size_bytes}: "
                f"run `fastcoder pull --force {text}`", param="model")
        return path

    cached = model_path(text) if text and "/" not in text and os.sep not in text else None
    if cached is not None and cached.is_file():
        return _check_gguf_file(cached, str(cached))

    path = Path(text).expanduser()
    if text and (_looks_like_path(text) or path.exists()):
        return _check_gguf_file(path, text)

    raise UnknownModelError(
        f"unknown model {text!r}: expected a path to a .gguf file or one of: "
        f"{', '.join(catalog)}", param="model")
