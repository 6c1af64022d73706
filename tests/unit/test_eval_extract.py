"""Code extraction from chat replies, and the one prompt every backend gets."""
from __future__ import annotations

from fastcoder.eval.extract import code_blocks, extract_code
from fastcoder.eval.humaneval import Problem, load_problems
from fastcoder.eval.prompting import SYSTEM_PROMPT, chat_messages

PROMPT = ('from typing import List\n\n\ndef helper(x: int) -> int:\n    return x + 1\n\n\n'
          'def add_all(xs: List[int]) -> List[int]:\n    """Adds one to each."""\n')
PROBLEM = Problem("HumanEval/x", PROMPT, "add_all", "def check(c):\n    pass\n", "")


def test_first_python_block_with_the_entry_point_and_the_prompts_header():
    reply = ("Here you go:\n```python\ndef add_all(xs):\n    return [helper(x) for x in xs]\n```\n"
             "Usage:\n```python\nprint(add_all([1]))\n```")
    code = extract_code(reply, PROBLEM)
    assert code.startswith("from typing import List\n")
    assert "def helper(x: int)" in code                   # the prompt's helper is kept
    assert code.endswith("def add_all(xs):\n    return [helper(x) for x in xs]\n")
    assert "print(add_all" not in code


def test_block_defining_the_entry_point_wins_over_an_earlier_block():
    reply = "```python\nimport math\n```\nthen\n```py\ndef add_all(xs):\n    return xs\n```"
    assert extract_code(reply, PROBLEM).endswith("def add_all(xs):\n    return xs\n")


def test_body_only_reply_continues_the_prompt():
    reply = "```python\n    return [x + 1 for x in xs]\n```"
    assert extract_code(reply, PROBLEM) == PROMPT + "    return [x + 1 for x in xs]\n"


def test_no_fence_takes_the_whole_reply_and_unclosed_fence_runs_to_the_end():
    assert extract_code("def add_all(xs):\n    return xs", PROBLEM).endswith(
        "def add_all(xs):\n    return xs")
    cut_by_max_tokens = "```python\ndef add_all(xs):\n    return [x +"
    assert code_blocks(cut_by_max_tokens) == ["def add_all(xs):\n    return [x +"]


def test_other_languages_are_not_python():
    assert code_blocks("```bash\nls\n```\n```python3\nx = 1\n```") == ["x = 1\n"]


def test_prompt_is_the_documented_one_and_problems_load_in_order():
    problems = load_problems(limit=3)
    assert [p.task_id for p in problems] == ["HumanEval/0", "HumanEval/1", "HumanEval/2"]
    assert len(load_problems()) == 164
    messages = chat_messages(problems[0])
    assert messages[0] == {"role": "system", "content": SYSTEM_PROMPT}
    assert messages[1]["content"].endswith(f"```python\n{problems[0].prompt}```")
    assert messages[1]["content"].startswith("Complete the following Python function.")
