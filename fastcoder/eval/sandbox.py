"""Runs untrusted model-written code: a fresh `python -I` subprocess per program, in a temporary
directory that is deleted afterwards, with a wall-clock timeout, resource limits and no network.

What this does and does not protect against (read before running unknown code):
- Time: the process group is killed after `timeout_s` seconds of wall time; RLIMIT_CPU ends a
  process that escapes that (e.g. a forked child) after about as much CPU time.
- Memory: RLIMIT_AS caps the address space (default 1 GiB), so a huge allocation fails with
  MemoryError instead of pushing the machine into swap.
- Files: cwd and HOME/TMPDIR are the temporary directory; RLIMIT_FSIZE caps any file written
  (stdout and stderr go to files there, so endless printing is capped too). Absolute paths
  elsewhere are still writable by the user running the eval: this is not a filesystem jail.
- Processes: RLIMIT_NPROC limits forks for non-root users only (root ignores it); the guard
  below also replaces os.fork/os.system/subprocess.Popen with functions that raise.
- Network: where unprivileged user namespaces work (`unshare --user --net`), the program runs in
  its own network namespace, which has no interfaces but a down loopback: nothing is reachable.
  Always, a guard at the top of the program replaces socket.socket, create_connection and
  getaddrinfo with refusals. The guard alone is not a security boundary: code that imports
  `_socket` or ctypes directly gets around it. `Sandbox.network_isolation` says which applies.
- Environment: only PATH, LANG, HOME and TMPDIR are passed (no proxies, no keys); `-I` ignores
  PYTHON* variables and the user's site-packages.
For hostile code use a container or VM; this is for benchmark code written by a model."""
from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from enum import Enum
from functools import lru_cache

GUARD = '''\
def _fastcoder_sandbox_guard():
    import os, socket, subprocess
    def refuse(*args, **kwargs):
        raise PermissionError("blocked by the fastcoder eval sandbox")
    # Classes, not functions, so modules that subclass them (ssl, asyncio) still import.
    class BlockedSocket(socket.socket):
        __init__ = refuse
    class BlockedPopen(subprocess.Popen):
        __init__ = refuse
    socket.socket, subprocess.Popen = BlockedSocket, BlockedPopen
    socket.create_connection = socket.getaddrinfo = socket.socketpair = refuse
    os.fork = os.forkpty = os.system = os.popen = os.kill = os.killpg = refuse
_fastcoder_sandbox_guard()
del _fastcoder_sandbox_guard
'''
UNSHARE_NET = ["unshare", "--user", "--map-root-user", "--net", "--"]
MAX_REASON_CHARS = 300


class Outcome(str, Enum):
    PASSED = "passed"
    FAILED = "failed"
    TIMED_OUT = "timed out"


@dataclass(frozen=True, slots=True)
class SandboxLimits:
    timeout_s: float = 10.0
    memory_bytes: int = 1 << 30
    file_bytes: int = 16 << 20
    max_processes: int = 64


@dataclass(frozen=True, slots=True)
class ExecutionResult:
    outcome: Outcome
    reason: str = ""           # last line of stderr, or the signal that ended the process

    @property
    def passed(self) -> bool:
        return self.outcome is Outcome.PASSED

    def describe(self) -> str:
        """'passed', 'timed out' or 'failed: <reason>' (the JSONL `result` field)."""
        if self.outcome is Outcome.FAILED:
            return f"failed: {self.reason}" if self.reason else "failed"
        return self.outcome.value


@lru_cache(maxsize=1)
def network_namespace_available() -> bool:
    """True when `unshare` can give a process its own (empty) network namespace here."""
    if shutil.which("unshare") is None:
        return False
    try:
        done = subprocess.run([*UNSHARE_NET, "true"], capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


class Sandbox:
    def __init__(self, limits: SandboxLimits = SandboxLimits(), python: str = sys.executable,
                 network_namespace: bool | None = None):
        """network_namespace: None uses one where available; False relies on the guard alone."""
        self.limits = limits
        self.python = python
        self.use_namespace = (network_namespace_available() if network_namespace is None
                              else network_namespace)

    @property
    def network_isolation(self) -> str:
        return "namespace+guard" if self.use_namespace else "guard"

    def run(self, program: str) -> ExecutionResult:
        """Runs `program` (Python source); it passes when it exits 0 within the limits."""
        with tempfile.TemporaryDirectory(prefix="fastcoder-eval-") as workdir:
            path = os.path.join(workdir, "program.py")
            with open(path, "w", encoding="utf-8") as f:
                f.write(GUARD + program)
            command = [self.python, "-I", "-B", path]
            if self.use_namespace:
                command = UNSHARE_NET + command
            env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": workdir,
                   "TMPDIR": workdir}
            with open(os.path.join(workdir, "stdout"), "wb") as out, \
                    open(os.path.join(workdir, "stderr"), "w+b") as err:
                proc = subprocess.Popen(command, cwd=workdir, env=env, stdin=subprocess.DEVNULL,
                                        stdout=out, stderr=err, start_new_session=True,
                                        preexec_fn=self._set_limits)
                try:
                    returncode = proc.wait(timeout=self.limits.timeout_s)
                except subprocess.TimeoutExpired:
                    return ExecutionResult(Outcome.TIMED_OUT)
                finally:
                    _kill_group(proc)           # children it left behind
                if returncode == 0:
                    return ExecutionResult(Outcome.PASSED)
                err.seek(0)
                return ExecutionResult(Outcome.FAILED, _failure_reason(err.read(), returncode))

    def _set_limits(self) -> None:
        """Runs in the child between fork and exec (so only async-signal-safe-ish calls)."""
        cpu_s = int(self.limits.timeout_s) + 1
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s))
        resource.setrlimit(resource.RLIMIT_AS, (self.limits.memory_bytes,) * 2)
        resource.setrlimit(resource.RLIMIT_FSIZE, (self.limits.file_bytes,) * 2)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if os.getuid() != 0:          # for root the kernel ignores it; a low one hurts nothing
            resource.setrlimit(resource.RLIMIT_NPROC, (self.limits.max_processes,) * 2)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def _failure_reason(stderr: bytes, returncode: int) -> str:
    if returncode < 0:
        return f"killed by {signal.Signals(-returncode).name}"
    lines = [line for line in stderr.decode("utf-8", "replace").splitlines() if line.strip()]
    reason = lines[-1].strip() if lines else f"exit status {returncode}"
    return reason[:MAX_REASON_CHARS]
