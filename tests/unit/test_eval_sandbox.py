"""The sandbox passes correct programs and contains wrong, slow, networked and greedy ones."""
from __future__ import annotations

import socket

import pytest

from fastcoder.eval.sandbox import Outcome, Sandbox, SandboxLimits

LIMITS = SandboxLimits(timeout_s=2, memory_bytes=512 << 20, file_bytes=1 << 20)


@pytest.fixture(scope="module")
def sandbox():
    return Sandbox(LIMITS)


def test_correct_program_passes_and_wrong_one_fails_with_its_error(sandbox):
    assert sandbox.run("def f(x):\n    return x * 2\nassert f(2) == 4\n").outcome is Outcome.PASSED
    result = sandbox.run("def f(x):\n    return x\nassert f(2) == 4, 'f(2)'\n")
    assert result.outcome is Outcome.FAILED
    assert result.describe() == "failed: AssertionError: f(2)"


def test_infinite_loop_times_out(sandbox):
    assert sandbox.run("while True:\n    pass\n").describe() == "timed out"


def test_memory_beyond_the_limit_fails(sandbox):
    result = sandbox.run("block = bytearray(1 << 30)\n")          # twice the 512 MiB limit
    assert result.describe() == "failed: MemoryError"


def test_file_size_is_capped(sandbox):
    result = sandbox.run("open('big', 'wb').write(b'x' * (4 << 20))\n")
    assert result.outcome is Outcome.FAILED
    assert "File too large" in result.reason or "SIGXFSZ" in result.reason


def test_runs_in_a_fresh_temporary_directory_with_a_stripped_environment(sandbox):
    program = ("import os\nassert sorted(os.listdir('.')) == ['program.py', 'stderr', 'stdout']\n"
               "assert os.getcwd().split('/')[-1].startswith('fastcoder-eval-')\n"
               "assert not any('proxy' in k.lower() for k in os.environ)\n"
               "assert sorted(os.environ) == ['HOME', 'LANG', 'PATH', 'TMPDIR']\n")
    assert sandbox.run(program).describe() == "passed"


def test_subprocesses_are_refused(sandbox):
    result = sandbox.run("import subprocess\nsubprocess.run(['true'])\n")
    assert result.describe() == "failed: PermissionError: blocked by the fastcoder eval sandbox"


@pytest.mark.parametrize("network_namespace", [None, False], ids=["auto", "guard-only"])
def test_network_connect_is_blocked(network_namespace):
    """A listener on this machine's loopback never sees the sandboxed program connect."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(0.5)
        port = listener.getsockname()[1]
        sandbox = Sandbox(LIMITS, network_namespace=network_namespace)
        result = sandbox.run(f"import socket\nsocket.create_connection(('127.0.0.1', {port}))\n"
                             f"import urllib.request\n"
                             f"urllib.request.urlopen('http://127.0.0.1:{port}/')\n")
        assert result.describe() == "failed: PermissionError: blocked by the fastcoder eval sandbox"
        with pytest.raises(socket.timeout):
            listener.accept()
