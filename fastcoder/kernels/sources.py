"""The C kernel sources and their hash (shared by the cffi build and the runtime freshness check)."""
from __future__ import annotations

import hashlib
from pathlib import Path

CSRC = Path(__file__).resolve().parent / "csrc"


def source_hash() -> str:
    """sha256 prefix of the C sources: the loader refuses a stale build (layouts may differ)."""
    digest = hashlib.sha256()
    for path in sorted(CSRC.iterdir()):
        if path.suffix in {".c", ".h"}:
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]
