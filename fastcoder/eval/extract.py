"""Turns a chat reply into a program body: the code block, plus whatever of the problem's
prompt the reply left out (imports such as `from typing import List`, helper functions)."""
from __future__ import annotations

import re

from fastcoder.eval.humaneval import Problem

# An opening fence with an optional language tag, then everything up to the closing fence or the
# end of the reply (a reply cut by max_tokens has no closing fence; its code still counts).
FENCE = re.compile(r"```([A-Za-z0-9_+-]*)[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL)
PYTHON_TAGS = ("python", "python3", "py", "")


def code_blocks(reply: str) -> list[str]:
    """Python (or untagged) fenced blocks, in order."""
    return [m.group(2) for m in FENCE.finditer(reply) if m.group(1).lower() in PYTHON_TAGS]


def defines(code: str, name: str) -> bool:
    return re.search(rf"^\s*def\s+{re.escape(name)}\s*\(", code, re.MULTILINE) is not None


def extract_code(reply: str, problem: Problem) -> str:
    """The program text for `problem` (tests not included).

    Takes the first block that defines the entry point, else the first python block, else the
    whole reply. If that code defines the entry point, the prompt's text before its `def` (imports,
    helpers) is put in front, since models often drop them. If it doesn't, the code is taken as a
    continuation of the function body, and the whole prompt is put in front."""
    blocks = code_blocks(reply)
    with_entry = [b for b in blocks if defines(b, problem.entry_point)]
    code = (with_entry or blocks or [reply])[0]
    if defines(code, problem.entry_point):
        header = problem.prompt[:_def_offset(problem)]
        return f"{header}\n{code}" if header.strip() else code
    return problem.prompt + code


def _def_offset(problem: Problem) -> int:
    match = re.search(rf"^def\s+{re.escape(problem.entry_point)}\s*\(", problem.prompt,
                      re.MULTILINE)
    return match.start() if match else 0
