"""`--compare llama.cpp`: llama.cpp's llama-server on the same GGUF, context and threads, one slot
per concurrent request, started for the run and stopped after it; scored as any server."""
from __future__ import annotations

import contextlib
import socket
import subprocess
from pathlib import Path
from typing import Iterator

from fastcoder.bench.llama_cpp_bench import PeerUnavailableError
from fastcoder.bench.serve_bench import LLAMA_SERVER, wait_healthy

PEERS = ("llama.cpp",)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def llama_server_command(model_path: Path, port: int, threads: int, context_per_slot: int,
                         num_slots: int) -> list[str]:
    if not LLAMA_SERVER.exists():
        raise PeerUnavailableError(f"{LLAMA_SERVER} not built: run `make llama-cpp`")
    # llama-server splits -c across its slots, so each slot gets the context fastcoder has.
    return [str(LLAMA_SERVER), "-m", str(model_path), "--host", "127.0.0.1", "--port", str(port),
            "-t", str(threads), "-tb", str(threads), "-np", str(num_slots),
            "-c", str(context_per_slot * num_slots), "--no-webui"]


@contextlib.contextmanager
def llama_server(model_path: Path, threads: int, context_per_slot: int, num_slots: int
                 ) -> Iterator[str]:
    """Yields the base URL of a healthy llama-server; stops it on exit."""
    port = free_port()
    command = llama_server_command(model_path, port, threads, context_per_slot, num_slots)
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(proc, url)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
