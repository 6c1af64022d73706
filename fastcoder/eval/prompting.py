"""The one chat prompt every backend gets (fastcoder in-process, fastcoder serve, llama-server),
so pass@1 differences come from the engines, not the prompt.

    system: You are a helpful coding assistant.
    user:   Complete the following Python function. Return the whole function in a single
            ```python code block.

            ```python
            <the problem's prompt: imports, signature, docstring>```

Decoding is greedy (temperature 0) with a token cap; the code is taken from the reply by
eval.extract."""
from __future__ import annotations

from fastcoder.eval.humaneval import Problem

SYSTEM_PROMPT = "You are a helpful coding assistant."
USER_TEMPLATE = ("Complete the following Python function. Return the whole function in a single "
                 "```python code block.\n\n```python\n{prompt}```")


def chat_messages(problem: Problem) -> list[dict]:
    return [{"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": USER_TEMPLATE.format(prompt=problem.prompt)}]
