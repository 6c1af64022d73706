"""The harness end to end with backends whose answers are known: the dataset's own canonical
solutions must all pass (pass@1 = 1.0), a wrong function must all fail (0.0)."""
from __future__ import annotations

import json

import pytest

from fastcoder.cli.main import main
from fastcoder.eval.backends import Completion
from fastcoder.eval.humaneval import Problem, load_problems
from fastcoder.eval.runner import run_humaneval
from fastcoder.eval.sandbox import Sandbox, SandboxLimits

NUM_PROBLEMS = 5


class CanonicalSolutionBackend:
    """Answers each problem, as a chat model would, with the dataset's reference solution."""
    name = "canonical"

    def __init__(self, problems: list[Problem]):
        self.problems = problems

    def _problem(self, messages: list[dict]) -> Problem:
        return next(p for p in self.problems if p.prompt in messages[-1]["content"])

    def complete(self, messages: list[dict], max_tokens: int) -> Completion:
        p = self._problem(messages)
        return Completion(f"Sure.\n```python\n{p.prompt}{p.canonical_solution}```\nDone.", None,
                          "stop")

    def close(self) -> None:
        pass


class WrongSolutionBackend(CanonicalSolutionBackend):
    name = "wrong"

    def complete(self, messages: list[dict], max_tokens: int) -> Completion:
        p = self._problem(messages)
        return Completion(f"```python\ndef {p.entry_point}(*args, **kwargs):\n    return None\n```",
                          7, "stop")


@pytest.fixture(scope="module")
def problems():
    return load_problems(NUM_PROBLEMS)


@pytest.fixture(scope="module")
def sandbox():
    return Sandbox(SandboxLimits(timeout_s=10))


def read_rows(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("concurrency", [1, 3])
def test_canonical_solutions_all_pass(tmp_path, problems, sandbox, concurrency):
    output = tmp_path / "canonical.jsonl"
    summary = run_humaneval(CanonicalSolutionBackend(problems), problems, output=output,
                            backend_label="test", concurrency=concurrency, sandbox=sandbox,
                            progress=False)
    assert (summary.num_problems, summary.num_passed, summary.pass_at_1) == (NUM_PROBLEMS,
                                                                             NUM_PROBLEMS, 1.0)
    rows = read_rows(output)
    assert [r["task_id"] for r in rows] == [p.task_id for p in problems]   # dataset order
    assert all(r["passed"] and r["result"] == "passed" for r in rows)
    assert rows[0]["code"].endswith(problems[0].canonical_solution)


def test_wrong_solutions_all_fail_with_a_reason(tmp_path, problems, sandbox):
    output = tmp_path / "wrong.jsonl"
    summary = run_humaneval(WrongSolutionBackend(problems), problems, output=output,
                            backend_label="test", concurrency=2, sandbox=sandbox, progress=False)
    assert (summary.num_passed, summary.pass_at_1) == (0, 0.0)
    rows = read_rows(output)
    assert len(rows) == NUM_PROBLEMS
    assert all(r["result"].startswith("failed: ") and not r["passed"] for r in rows)
    assert rows[0]["num_tokens"] == 7


@pytest.mark.parametrize("argv, message", [
    (["--server", "http://127.0.0.1:9", "--compare", "llama.cpp"],
     "--compare and --speculative need -m, not --server"),
    (["--concurrency", "0"], "--concurrency must be >= 1"),
    (["--limit", "0"], "--limit must be >= 1"),
    (["--timeout", "0"], "--timeout must be > 0"),
])
def test_cli_rejects_bad_flags_in_one_line(capsys, argv, message):
    assert main(["eval", "humaneval", *argv]) == 2
    assert capsys.readouterr().err == f"error: {message}\n"


def test_cli_model_and_server_are_mutually_exclusive(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", "humaneval", "-m", "x.gguf", "--server", "http://127.0.0.1:9"])
    assert exit_info.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_cli_unreachable_server_is_a_one_line_error(capsys):
    assert main(["eval", "humaneval", "--server", "http://127.0.0.1:9", "--limit", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: http://127.0.0.1:9/v1/models: ") and err.count("\n") == 1
