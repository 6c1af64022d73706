"""Scores a backend on HumanEval: for each problem, one greedy chat reply, the code extracted
from it, the program (code + the problem's tests + `check(entry_point)`) run in the sandbox.
Requests and executions overlap across `concurrency` worker threads; rows are written to the
JSONL in dataset order as they become available, so an interrupted run keeps what it finished."""
from __future__ import annotations

import json
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path

from tqdm import tqdm

from fastcoder.eval.backends import Backend
from fastcoder.eval.extract import extract_code
from fastcoder.eval.humaneval import Problem
from fastcoder.eval.prompting import chat_messages
from fastcoder.eval.sandbox import Sandbox
from fastcoder.kernels.qmatmul import release_threads


@dataclass(frozen=True, slots=True)
class ProblemResult:
    """One JSONL row."""
    task_id: str
    passed: bool
    result: str                  # "passed" | "failed: <reason>" | "timed out"
    completion: str              # the model's whole reply
    code: str                    # what was run, before the tests were appended
    num_tokens: int | None       # generated tokens, where the backend reports them
    finish_reason: str | None
    seconds: float               # generation + execution wall time


@dataclass(frozen=True, slots=True)
class EvalSummary:
    benchmark: str
    model: str
    backend: str                 # "fastcoder" or the server URL
    num_problems: int
    num_passed: int
    pass_at_1: float             # greedy: one sample per problem, so pass@1 = passed / problems
    max_tokens: int
    concurrency: int
    network_isolation: str
    output: str
    seconds: float


def program_for(problem: Problem, code: str) -> str:
    return f"{code}\n\n{problem.test}\n\ncheck({problem.entry_point})\n"


def solve(backend: Backend, sandbox: Sandbox, problem: Problem, max_tokens: int
          ) -> ProblemResult:
    started = time.perf_counter()
    completion = backend.complete(chat_messages(problem), max_tokens)
    code = extract_code(completion.text, problem)
    execution = sandbox.run(program_for(problem, code))
    return ProblemResult(problem.task_id, execution.passed, execution.describe(),
                         completion.text, code, completion.num_tokens,
                         completion.finish_reason, round(time.perf_counter() - started, 3))


def run_humaneval(backend: Backend, problems: list[Problem], *, output: Path, backend_label: str,
                  concurrency: int = 1, max_tokens: int = 512, sandbox: Sandbox | None = None,
                  progress: bool = True) -> EvalSummary:
    sandbox = sandbox or Sandbox()
    release_threads()             # local generation runs on the pool's threads, not this one
    started = time.perf_counter()
    results: dict[int, ProblemResult] = {}
    num_passed = 0
    next_to_write = 0
    output.parent.mkdir(parents=True, exist_ok=True)
    with open(output, "w", encoding="utf-8") as out, \
            ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="eval") as pool, \
            tqdm(total=len(problems), desc=f"humaneval {backend.name}", unit="problem",
                 file=sys.stderr, disable=not progress) as bar:
        futures: dict[Future, int] = {pool.submit(solve, backend, sandbox, p, max_tokens): i
                                      for i, p in enumerate(problems)}
        try:
            for future in as_completed(futures):
                result = results[futures[future]] = future.result()
                num_passed += result.passed
                bar.update(1)
                bar.set_postfix(passed=num_passed)
                while next_to_write in results:
                    out.write(json.dumps(asdict(results[next_to_write])) + "\n")
                    next_to_write += 1
                out.flush()
        except BaseException:
            for future in futures:                   # don't start what's still queued
                future.cancel()
            raise
    num_problems = len(problems)
    return EvalSummary("humaneval", backend.name, backend_label, num_problems, num_passed,
                       num_passed / num_problems if num_problems else 0.0, max_tokens,
                       concurrency, sandbox.network_isolation, str(output),
                       round(time.perf_counter() - started, 1))
