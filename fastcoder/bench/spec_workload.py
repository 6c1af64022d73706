"""The code-edit workload of `fastcoder bench spec`: real Python files from the running
interpreter's standard library, each with one small edit to make (rename a parameter, add an
argument, fix a docstring typo). The reply is nearly the whole file again, which is what an
editor's "apply this change" request looks like and where prompt lookup shines."""
from __future__ import annotations

import re
import sysconfig
from dataclasses import dataclass
from pathlib import Path

# Fixed order so every run (and every machine with the same Python) sees the same workload.
STDLIB_FILES = (
    "bisect.py", "heapq.py", "colorsys.py", "shlex.py", "fnmatch.py", "glob.py", "calendar.py",
    "string.py", "queue.py", "sched.py", "graphlib.py", "contextlib.py", "copy.py", "netrc.py",
    "numbers.py", "pprint.py", "reprlib.py", "statistics.py", "tabnanny.py", "timeit.py",
    "base64.py", "difflib.py", "filecmp.py", "fractions.py", "getopt.py", "hmac.py",
    "linecache.py", "textwrap.py", "json/decoder.py", "json/encoder.py", "gettext.py",
    "operator.py",
)
EDIT_KINDS = ("rename", "add_argument", "docstring")
_DEF = re.compile(r"^(\s*)def (\w+)\(([^)]*)\)", re.MULTILINE)
_PARAM = re.compile(r"^\s*(\w+)\s*(=.*)?$")


@dataclass(frozen=True, slots=True)
class EditTask:
    name: str            # stdlib-relative path
    kind: str            # one of EDIT_KINDS (a docstring task falls back to rename)
    code: str            # the file excerpt the model must return, edited
    instruction: str

    @property
    def prompt(self) -> str:
        return (f"Return this file with one small change: {self.instruction} Change nothing "
                f"else. Reply with the complete file in a single ```python code block and "
                f"nothing else.\n\n```python\n{self.code}```")


def excerpt(source: str, max_lines: int) -> str:
    """max_lines lines from the first top-level def/class on (module headers are mostly license
    text and imports; the edits need functions)."""
    lines = source.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.startswith(("def ", "class "))), 0)
    return "".join(lines[start:start + max_lines])


def _first_param(code: str) -> tuple[str, str] | None:
    """(function name, its first plain parameter other than self/cls) of the first def that
    has one."""
    for match in _DEF.finditer(code):
        for param in match.group(3).split(","):
            plain = _PARAM.match(param)
            if plain and plain.group(1) not in ("self", "cls"):
                return match.group(2), plain.group(1)
    return None


def _edit(code: str, kind: str) -> tuple[str, str, str]:
    """(kind, code, instruction) for this excerpt; kinds that do not apply fall back."""
    if kind == "docstring":
        found = re.search(r'"""[^"]*?\bthe\b', code)
        if found:
            at = found.end() - 3
            code = code[:at] + "teh" + code[at + 3:]
            return kind, code, ("Fix the spelling mistake 'teh' (it should be 'the') in the "
                                "docstring that contains it.")
        kind = "rename"
    target = _first_param(code)
    if target is None:
        return "add_argument", code, "Add a module-level constant `VERSION = 1` at the very end."
    func, param = target
    if kind == "add_argument":
        return kind, code, (f"Add a new last parameter `verbose=False` to the function "
                            f"`{func}` (it does not need to be used).")
    return "rename", code, (f"In the function `{func}`, rename the parameter `{param}` to "
                            f"`{param}_value` everywhere inside that function.")


def edit_tasks(num_files: int, max_lines: int) -> list[EditTask]:
    if not 1 <= num_files <= len(STDLIB_FILES):
        from fastcoder.errors import InvalidParameterError
        raise InvalidParameterError(f"--files must be in [1, {len(STDLIB_FILES)}]",
                                    param="files")
    root = Path(sysconfig.get_paths()["stdlib"])
    tasks = []
    for i, name in enumerate(STDLIB_FILES[:num_files]):
        code = excerpt((root / name).read_text(encoding="utf-8"), max_lines)
        kind, code, instruction = _edit(code, EDIT_KINDS[i % len(EDIT_KINDS)])
        tasks.append(EditTask(name, kind, code, instruction))
    return tasks
