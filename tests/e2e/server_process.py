"""Starts `fastcoder serve` as a subprocess on a free loopback port and waits for /health.

Presets are plain keyword arguments (engine, extra flags); the process is always killed, and a
server that dies during start-up fails the test with its own output."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    def __init__(self, model: Path, *extra_args: str, engine: str = "batched",
                 name: str = "tiny"):
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.name = name
        self.engine = engine
        self.args = [sys.executable, "-m", "fastcoder.cli.main", "serve", "-m", str(model),
                     "--port", str(self.port), "--served-model-name", name, "--threads", "1",
                     "--engine", engine, *extra_args]
        self.proc: subprocess.Popen | None = None
        self.log = tempfile.TemporaryFile(mode="w+")     # a pipe nobody reads could fill up

    def start(self, timeout_s: float = 60) -> "ServerProcess":
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("FASTCODER_API_KEY", None)
        self.proc = subprocess.Popen(self.args, stdout=self.log, stderr=subprocess.STDOUT,
                                     env=env)
        deadline = time.monotonic() + timeout_s
        try:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"server exited early ({self.proc.returncode}):\n"
                                       f"{self.output()}")
                try:
                    if httpx.get(f"{self.base_url}/health", timeout=1).status_code == 200:
                        return self
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
            raise RuntimeError(f"server did not become healthy in {timeout_s} s:\n"
                               f"{self.output()}")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()[-4000:]

    def metrics(self) -> dict[str, float]:
        """/metrics as {series: value}, e.g. 'fastcoder_requests_total{status="200"}'."""
        text = httpx.get(f"{self.base_url}/metrics", timeout=5).text
        values = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                key, _, value = line.rpartition(" ")
                values[key] = float(value)
        return values
