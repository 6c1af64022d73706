"""Correctness evaluation: HumanEval problems, one chat prompt for every backend, code extracted
from the reply, run in a sandboxed subprocess, pass@1."""
